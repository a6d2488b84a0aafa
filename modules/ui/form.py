"""The link between controls and ``GenerationJob`` fields, both ways.

A ``JobForm`` maps job field names (the /sdapi/v1 names) to the controls that hold them, in the order
the generate handler receives their values. It turns those values into a job, and a parsed parameters
text (``infotext_to_settings``) back into updates of the same controls, so "paste parameters" and
"send to img2img" fill exactly the fields a generation reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr

from modules.processing.job import GenerationJob

USE_SAME_SAMPLER = "Use same sampler"
USE_SAME_SCHEDULER = "Use same scheduler"
# "Use same ..." choices mean "not set" in the job, as in an A1111 API payload.
SAME_CHOICES = {"hr_sampler_name": USE_SAME_SAMPLER, "hr_scheduler": USE_SAME_SCHEDULER}
_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(GenerationJob)}


class JobForm:
    def __init__(self) -> None:
        self.fields: dict[str, gr.components.Component] = {}
        # Controls outside the job's fields that "paste" also fills (extension scripts'), with their
        # parameters-text key or a function of the parsed parameters.
        self.infotext_fields: list[tuple[gr.components.Component, Any]] = []

    def add(self, name: str, component: gr.components.Component) -> gr.components.Component:
        if name not in _FIELD_TYPES:
            raise KeyError(f"{name!r} is not a GenerationJob field")
        self.fields[name] = component
        return component

    def inputs(self) -> list[gr.components.Component]:
        return list(self.fields.values())

    def values(self, values: list[Any]) -> dict[str, Any]:
        """Handler values -> typed job fields (sliders give floats, "Use same ..." gives None)."""
        named = dict(zip(self.fields, values, strict=True))
        return {name: _coerce(name, value) for name, value in named.items()}

    def to_job(self, values: list[Any], **extra: Any) -> GenerationJob:
        return GenerationJob(**{**self.values(values), **extra})

    def paste_updates(self, settings: dict[str, Any]) -> list[Any]:
        """One update per field: the pasted value where the text has one, else unchanged."""
        updates = []
        hires = bool(settings.get("enable_hr"))
        for name, component in self.fields.items():
            value = settings.get(name)
            if value is None and hires and name in SAME_CHOICES:
                value = SAME_CHOICES[name]  # a hires text without "Hires sampler" used the same one
            updates.append(
                gr.update() if value is None or not _allowed(component, value) else gr.update(value=value)
            )
        return updates


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELD_TYPES[name]
    if value is None:
        return None
    if name in SAME_CHOICES and value == SAME_CHOICES[name]:
        return None
    if kind == "bool":
        return bool(value)
    if kind in ("int", "int | None"):
        return int(value)
    if kind in ("float", "float | None"):
        return float(value)
    return value


def _allowed(component: gr.components.Component, value: Any) -> bool:
    # A sampler/upscaler this app lacks (e.g. from another UI) leaves the dropdown as it was.
    if isinstance(component, gr.Dropdown) and not component.multiselect:
        return value in [c[1] if isinstance(c, tuple) else c for c in component.choices]
    return True
