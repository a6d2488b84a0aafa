"""The Settings tab, generated from ``runtime.options.definitions`` grouped by section.

"Apply settings" writes the changed values to config.json (via ``Options.update``) and names the ones
that only take effect after a restart. Controls read their value when the page loads, so a reload
shows what is saved. Top-bar settings are left out (see ``topbar``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import gradio as gr

from modules.options import SECTIONS, OptionInfo
from modules.runtime import Runtime
from modules.ui import topbar

COMPONENTS: dict[str, Callable[..., gr.components.Component]] = {
    "textbox": gr.Textbox,
    "number": gr.Number,
    "slider": gr.Slider,
    "checkbox": gr.Checkbox,
    "dropdown": gr.Dropdown,
    "radio": gr.Radio,
}


def grouped(definitions: dict[str, OptionInfo]) -> dict[str, list[OptionInfo]]:
    """Settings by section title, sections in SECTIONS order then any an extension added."""
    groups: dict[str, list[OptionInfo]] = {}
    for info in definitions.values():
        if info.key in topbar.KEYS:
            continue
        groups.setdefault(SECTIONS.get(info.section, info.section), []).append(info)
    order = list(SECTIONS.values())
    return dict(sorted(groups.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def label(info: OptionInfo) -> str:
    return f"{info.label} (requires restart)" if info.restart_required else info.label


def component(runtime: Runtime, info: OptionInfo) -> gr.components.Component:
    factory = COMPONENTS.get(info.component, gr.Textbox)
    return factory(
        label=label(info),
        value=lambda key=info.key: runtime.options.get(key),
        elem_id=f"setting_{info.key}",
        **dict(info.component_args),
    )


def apply(runtime: Runtime, keys: list[str], values: list[Any]) -> str:
    """Save the values that differ from the current ones; report what changed and what needs a restart."""
    options = runtime.options
    changed = {}
    for key, value in zip(keys, values, strict=True):
        if value != options.get(key):
            changed[key] = value
    try:
        options.update(changed)
    except ValueError as error:
        return f"<div class='error'>{html.escape(str(error))}</div>"
    if not changed:
        return "<p>0 settings changed.</p>"
    restart = [k for k in changed if options.definitions.get(k) and options.definitions[k].restart_required]
    text = f"{len(changed)} settings changed: {', '.join(changed)}."
    if restart:
        text += f" Restart the server for {', '.join(restart)} to take effect."
    return f"<p>{html.escape(text)}</p>"


def build(runtime: Runtime) -> None:
    keys: list[str] = []
    controls: list[gr.components.Component] = []
    with gr.Row():
        submit = gr.Button("Apply settings", variant="primary", elem_id="settings_submit")
    result = gr.HTML(elem_id="settings_result")
    with gr.Tabs(overflow_behavior="wrap", elem_id="settings"):
        for title, infos in grouped(runtime.options.definitions).items():
            with gr.Tab(title, elem_id=f"settings_{title.lower().replace(' ', '_').replace('/', '_')}"):
                for info in infos:
                    keys.append(info.key)
                    controls.append(component(runtime, info))
    submit.click(
        lambda *values: apply(runtime, keys, list(values)), controls, result, api_visibility="private"
    )
