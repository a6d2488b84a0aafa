"""The Settings tab, generated from ``runtime.options.definitions`` grouped by section.

"Apply settings" writes the changed values to config.json (via ``Options.update``) and names the ones
that only take effect after a restart. Controls read their value when the page loads, so a reload
("Reload UI") shows what is saved. Top-bar settings are left out (see ``topbar``).

The search box keeps the settings whose label or key holds every word typed and says which sections
hold them: Gradio renders only the open tab, so the first matching section is opened.
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
        return f"<div class='ui-error'>{html.escape(str(error))}</div>"
    if not changed:
        return "<p>0 settings changed.</p>"
    restart = [k for k in changed if options.definitions.get(k) and options.definitions[k].restart_required]
    text = f"{len(changed)} settings changed: {', '.join(changed)}."
    if restart:
        text += f" Restart the server for {', '.join(restart)} to take effect."
    return f"<p>{html.escape(text)}</p>"


def matches(info: OptionInfo, search: str) -> bool:
    """Every word of ``search`` in the setting's label or key (any case)."""
    text = f"{label(info)} {info.key}".lower()
    return all(word in text for word in (search or "").lower().split())


def search_updates(sections: list[tuple[str, str, list[OptionInfo]]], search: str) -> list[Any]:
    """The updates for a search: the Tabs (first matching section opened), the result line naming
    the sections that match, then every setting's visibility."""
    shown_updates, counts, first = [], [], None
    for slug_, title, infos in sections:
        shown = [matches(info, search) for info in infos]
        if any(shown):
            counts.append(f"{title} ({sum(shown)})")
            first = first or slug_
        shown_updates += [gr.update(visible=v) for v in shown]
    found = sum(int(c.rsplit("(", 1)[1][:-1]) for c in counts)
    text = "" if not search.strip() else f"<p>{found} settings match: {html.escape(', '.join(counts))}</p>"
    # An emptied box keeps the open tab (every section matches, the first would be opened).
    tabs = gr.update(selected=first) if first is not None and search.strip() else gr.update()
    return [tabs, text, *shown_updates]


def slug(title: str) -> str:
    return f"settings_{title.lower().replace(' ', '_').replace('/', '_')}"


def build(runtime: Runtime) -> None:
    keys: list[str] = []
    controls: list[gr.components.Component] = []
    sections: list[tuple[str, str, list[OptionInfo]]] = []
    with gr.Row(elem_id="settings_top"):
        submit = gr.Button("Apply settings", variant="primary", elem_id="settings_submit")
        # A1111 restarts its Gradio app here; ours reads every value when the page loads, so a reload
        # of the page is what shows the settings as saved.
        reload = gr.Button("Reload UI", elem_id="settings_restart_gradio")
    search = gr.Textbox(
        show_label=False, placeholder="Search settings...", elem_id="settings_search", max_lines=1
    )
    result = gr.HTML(elem_id="settings_result")
    with gr.Tabs(overflow_behavior="wrap", elem_id="settings") as tabs:
        for title, infos in grouped(runtime.options.definitions).items():
            with gr.Tab(title, id=slug(title), elem_id=slug(title)):
                for info in infos:
                    keys.append(info.key)
                    controls.append(component(runtime, info))
            sections.append((slug(title), title, infos))
    submit.click(
        lambda *values: apply(runtime, keys, list(values)), controls, result, api_visibility="private"
    )
    reload.click(None, None, None, js="() => { window.location.reload(); }", api_visibility="private")
    search.change(
        lambda text: search_updates(sections, text or ""),
        search,
        [tabs, result, *controls],
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="private",
    )
