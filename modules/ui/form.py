"""The link between controls and ``GenerationJob`` fields, both ways, derived from the field declarations.

``control(name, tab)`` makes a field's Gradio component from its declaration (label, control kind,
slider range and step, default, A1111's element id). A ``JobForm`` maps job field names (the /sdapi/v1
names) to the controls that hold them, in the order the generate handler receives their values. It
turns those values into a job (converted and checked by the same declarations as the API's), and a
parsed parameters text (``infotext_to_settings``) back into updates of the same controls, so "paste
parameters" and "send to img2img" fill exactly the fields a generation reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

from modules.fields import Field
from modules.processing.job import JOB_FIELDS, USE_SAME_SAMPLER, USE_SAME_SCHEDULER, GenerationJob

__all__ = ["USE_SAME_SAMPLER", "USE_SAME_SCHEDULER", "JobForm", "control"]


def elem_id(spec: Field, tab: str) -> str:
    """A1111's element id: "<tab>_<suffix>" where it has one, else the field's own name."""
    return f"{tab}_{spec.elem_id}" if spec.elem_id else spec.name


def _labelled(spec: Field) -> bool:
    """Radios whose value is a code (an enum) or a bool, shown by the labels in ``choices``."""
    return spec.choices is not None and (spec.coded is not None or spec.kind is bool)


def display_value(spec: Field, value: Any) -> Any:
    """A field's value as its control shows it: labels for codes and labelled bools, the "Use same ..."
    choice for None."""
    if value is None:
        return spec.same
    if _labelled(spec):
        return spec.choices[int(value)]
    return value


def control(
    name: str,
    tab: str,
    choices: Sequence[str] | None = None,
    value: Any = None,
    **overrides: Any,
) -> gr.components.Component:
    """The Gradio control of job field ``name`` on ``tab``, from its declaration.

    ``choices`` lists a lookup field's options (samplers, upscalers...: only the runtime knows them; a
    "Use same ..." choice is put first); ``value`` replaces the declared default (a tab's own default,
    e.g. img2img's denoising strength); ``overrides`` go to the component as they are.
    """
    spec = JOB_FIELDS[name]
    default = spec.default if value is None else value
    common: dict[str, Any] = {"label": spec.label, "elem_id": elem_id(spec, tab), **overrides}
    if spec.help:
        common.setdefault("info", spec.help)
    kind = spec.control
    if kind == "slider":
        low = spec.ui_minimum if spec.ui_minimum is not None else spec.minimum
        high = spec.ui_maximum if spec.ui_maximum is not None else spec.maximum
        return gr.Slider(low, high, value=default, step=spec.step, **common)
    if kind == "number":
        return gr.Number(value=default, precision=0 if spec.kind is int else None, **common)
    if kind == "checkbox":
        return gr.Checkbox(value=bool(default), **common)
    if kind == "textbox":
        return gr.Textbox(value=default, **common)
    if kind == "radio":
        assert spec.choices is not None, name
        labelled = _labelled(spec)
        return gr.Radio(
            list(spec.choices),
            value=display_value(spec, default),
            type="index" if labelled else "value",
            **common,
        )
    if kind == "dropdown":
        options = list(choices if choices is not None else spec.choices or ())
        if spec.same is not None:
            options.insert(0, spec.same)
        return gr.Dropdown(choices=options, value=display_value(spec, default), **common)
    raise ValueError(f"job field {name!r} declares no control")


class JobForm:
    def __init__(self) -> None:
        self.fields: dict[str, gr.components.Component] = {}
        # Controls outside the job's fields that "paste" also fills (extension scripts'), with their
        # parameters-text key or a function of the parsed parameters.
        self.infotext_fields: list[tuple[gr.components.Component, Any]] = []

    def add(self, name: str, component: gr.components.Component) -> gr.components.Component:
        if name not in JOB_FIELDS:
            raise KeyError(f"{name!r} is not a GenerationJob field")
        self.fields[name] = component
        return component

    def control(self, name: str, tab: str, **kwargs: Any) -> gr.components.Component:
        """Make the field's control (see ``control``) and add it to the form."""
        return self.add(name, control(name, tab, **kwargs))

    def inputs(self) -> list[gr.components.Component]:
        return list(self.fields.values())

    def values(self, values: list[Any]) -> dict[str, Any]:
        """Handler values -> typed job fields (sliders give floats, "Use same ..." gives None); a
        FieldError names a value its field refuses."""
        named = dict(zip(self.fields, values, strict=True))
        return {name: JOB_FIELDS[name].check(value) for name, value in named.items()}

    def to_job(self, values: list[Any], **extra: Any) -> GenerationJob:
        return GenerationJob(**{**self.values(values), **extra})

    def paste_updates(self, settings: dict[str, Any]) -> list[Any]:
        """One update per field: the pasted value where the text has one, else unchanged."""
        updates = []
        hires = bool(settings.get("enable_hr"))
        for name, component in self.fields.items():
            spec = JOB_FIELDS[name]
            value = display_value(spec, settings[name]) if name in settings else None
            if value is None and hires and spec.same is not None and "hr_" in name:
                value = spec.same  # a hires text without "Hires sampler" used the same one
            updates.append(
                gr.update() if value is None or not _allowed(component, value) else gr.update(value=value)
            )
        return updates


def _allowed(component: gr.components.Component, value: Any) -> bool:
    # A sampler/upscaler this app lacks (e.g. from another UI) leaves the dropdown as it was.
    if isinstance(component, gr.Dropdown) and not component.multiselect:
        return value in [c[1] if isinstance(c, tuple) else c for c in component.choices]
    return True
