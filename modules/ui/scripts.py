"""Extension scripts in a generating tab: the Script dropdown with each selectable script's controls,
and an accordion per always-on script.

Every script's ``ui(is_img2img)`` runs once per tab at build time; the controls' values travel with the
generate request and become the job's ``script_name`` / ``script_args`` / ``alwayson_scripts``, the same
fields an /sdapi/v1 request sends. A script whose ``ui`` raises is reported under its extension's name
and gets no controls; the tab still builds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from modules.extensions.api import Script
from modules.processing.job import GenerationJob
from modules.runtime import Runtime

NONE = "None"
# An infotext field's key: a parameters-text key, or a function of the parsed parameters (A1111 allows both).
InfotextKey = str | Callable[[dict[str, Any]], Any]


@dataclass
class ScriptUi:
    """One script's controls in one tab, and the (component, key) pairs it offers to "paste"."""

    script: Script
    title: str
    components: list[gr.components.Component]
    infotext_fields: list[tuple[gr.components.Component, InfotextKey]]
    group: gr.Group | gr.Accordion | None = None


@dataclass
class ScriptControls:
    """All script controls of a tab, in the order their values reach the generate handler:
    the dropdown, every selectable script's components, then every always-on script's components."""

    dropdown: gr.Dropdown | None = None
    selectable: list[ScriptUi] = field(default_factory=list)
    alwayson: list[ScriptUi] = field(default_factory=list)

    def inputs(self) -> list[gr.components.Component]:
        head = [self.dropdown] if self.dropdown is not None else []
        return head + [c for ui in self.selectable + self.alwayson for c in ui.components]

    def apply(self, job: GenerationJob, values: list[Any]) -> None:
        """Set the job's script fields from this tab's script values (``inputs()`` order)."""
        values = list(values)
        chosen = values.pop(0) if self.dropdown is not None else NONE
        for ui in self.selectable:
            args, values = values[: len(ui.components)], values[len(ui.components) :]
            if ui.title == chosen:
                job.script_args = args
        job.script_name = None if chosen in (None, NONE) else chosen
        if self.alwayson:
            requested = dict(job.alwayson_scripts or {})
            for ui in self.alwayson:
                args, values = values[: len(ui.components)], values[len(ui.components) :]
                requested[ui.title] = {"args": args}
            job.alwayson_scripts = requested

    def infotext_fields(self) -> list[tuple[gr.components.Component, InfotextKey]]:
        fields = [f for ui in self.selectable + self.alwayson for f in ui.infotext_fields]
        if self.dropdown is not None:
            # Grids made by a script say "Script: X/Y/Z plot"; any other text selects "None" (as A1111).
            titles = {ui.title for ui in self.selectable}
            fields.insert(0, (self.dropdown, lambda params: _script_choice(params, titles)))
        return fields


def _script_choice(params: dict[str, Any], titles: set[str]) -> str:
    chosen = params.get("Script", NONE)
    return chosen if chosen in titles else NONE


def script_ui(runtime: Runtime, script: Script, is_img2img: bool) -> ScriptUi | None:
    """Run the script's ``ui``; its infotext_fields are read right away because a script may set them
    in ``ui`` and the same instance serves both tabs. Only pairs naming a control this call returned are
    kept: a list the script did not replace still holds the other tab's controls."""
    try:
        title = script.title()
        components = [c for c in script.ui(is_img2img) or [] if c is not None]
        fields = list(getattr(script, "infotext_fields", None) or [])
    except Exception as error:  # one broken script must not stop the page from building
        tab = "img2img" if is_img2img else "txt2img"
        runtime.extensions.report(script.name or "?", f"{type(script).__name__}.ui ({tab})", error)
        return None
    mine = [(c, key) for c, key in fields if any(c is own for own in components)]
    return ScriptUi(script, title, components, mine)


def build_alwayson(runtime: Runtime, is_img2img: bool, tab: str) -> list[ScriptUi]:
    """One accordion per always-on script that has controls (A1111 shows them in the settings column)."""
    built = []
    for script in runtime.scripts.alwayson(is_img2img):
        with gr.Accordion(_safe_title(script), open=False, elem_id=f"{tab}_script_{_slug(script)}") as box:
            ui = script_ui(runtime, script, is_img2img)
        if ui is None:
            box.visible = False
            continue
        ui.group = box
        box.visible = bool(ui.components)
        built.append(ui)
    return built


def build_selectable(runtime: Runtime, is_img2img: bool, tab: str) -> tuple[gr.Dropdown, list[ScriptUi]]:
    """The Script dropdown, and under it each selectable script's controls in a group shown while that
    script is chosen."""
    dropdown = gr.Dropdown(label="Script", choices=[NONE], value=NONE, elem_id=f"{tab}_script")
    built = []
    for script in runtime.scripts.selectable(is_img2img):
        with gr.Group(visible=False, elem_id=f"{tab}_script_{_slug(script)}") as group:
            ui = script_ui(runtime, script, is_img2img)
        if ui is not None:
            ui.group = group
            built.append(ui)
    # Filled in after the scripts' ui ran: a script whose ui failed is not offered.
    dropdown.choices = [(title, title) for title in (NONE, *(ui.title for ui in built))]

    def show(chosen: str) -> list[Any]:
        return [gr.update(visible=ui.title == chosen) for ui in built]

    if built:
        # change, not input: pasting "Script: ..." sets the dropdown and must show the controls too.
        dropdown.change(
            show, dropdown, [ui.group for ui in built], show_progress="hidden", api_visibility="private"
        )
    return dropdown, built


def paste_value(component: gr.components.Component, key: InfotextKey, params: dict[str, Any]) -> Any:
    """An update for one script infotext field: the parsed value converted the way A1111 converts it,
    by the type of the control's current value (ints via float, "False" is false); a value that does
    not convert, or a choice the dropdown lacks, leaves the control as it is."""
    value = key(params) if callable(key) else params.get(key)
    if value is None:
        return gr.update()
    if isinstance(value, dict):  # a callable key may return a ready gr.update
        return value
    if isinstance(component, gr.Dropdown) and not component.multiselect:
        if value not in [c[1] if isinstance(c, tuple) else c for c in component.choices]:
            return gr.update()
    return gr.update(value=_convert(component.value, value))


def _convert(current: Any, value: Any) -> Any:
    if not isinstance(value, str) or current is None or isinstance(current, str | list | dict):
        return value
    try:
        if isinstance(current, bool):
            return value != "False" and bool(value)
        if isinstance(current, int | float):
            return float(value)
    except ValueError:
        return current
    return value


def _safe_title(script: Script) -> str:
    try:
        return script.title()
    except Exception:
        return type(script).__name__


def _slug(script: Script) -> str:
    return "".join(c if c.isalnum() else "_" for c in _safe_title(script).lower())
