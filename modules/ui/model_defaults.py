"""Generation controls that follow the selected checkpoint's recommended defaults.

When a checkpoint is selected (and when the page opens, for the checkpoint in use), each control named
by ``modules.models.recommended.FIELDS`` takes the model's recommended value, or its own default where
the model recommends none, but only while the user has not changed it: a control whose value is still
the one this module last gave it (kept per browser session) is the app's, anything else is the user's
and stays. A default the user set in ui-config.json (differing from the field's declared one) counts
as the user's too, so it is never replaced.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr

from modules.models import recommended
from modules.processing.job import JOB_FIELDS
from modules.runtime import Runtime
from modules.ui.form import JobForm, display_value
from modules.ui.topbar import current_checkpoint


def recommended_for(runtime: Runtime, title: str | None) -> dict[str, Any]:
    """The recommended values of the checkpoint ``title`` names; {} for none or an unknown one."""
    if not title:
        return {}
    try:
        return recommended.read(runtime.models.find(title).path)
    except KeyError:
        return {}


def same(a: Any, b: Any) -> bool:
    """Control values compare as numbers where they are (a slider gives 64.0 for 64)."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    return a == b


def managed(forms: list[JobForm]) -> list[tuple[str, gr.components.Component]]:
    """The (field, control) pairs this module may set: recommendable fields still at their declared
    default after ui-config.json was applied."""
    pairs = []
    for form in forms:
        for name in recommended.FIELDS:
            component = form.fields.get(name)
            if component is not None and same(
                component.value, display_value(JOB_FIELDS[name], JOB_FIELDS[name].default)
            ):
                pairs.append((name, component))
    return pairs


def updates(
    pairs: list[tuple[str, gr.components.Component]],
    values: dict[str, Any],
    given: list[Any],
    current: list[Any],
) -> tuple[list[Any], list[dict]]:
    """The new "last given" values and one update per control: the target where the control still holds
    what was last given, unchanged elsewhere."""
    new_given, out = [], []
    for (name, component), last, now in zip(pairs, given, current, strict=True):
        target = values.get(name, component.value)
        choices = [c[1] if isinstance(c, tuple) else c for c in getattr(component, "choices", None) or []]
        if choices and target not in choices:
            target = component.value  # a sampler this app lacks: keep the control's own default
        if same(now, last):
            new_given.append(target)
            out.append(gr.update(value=target))
        else:
            new_given.append(last)
            out.append(gr.update())
    return new_given, out


def wire(runtime: Runtime, demo: gr.Blocks, checkpoint: gr.Dropdown, forms: list[JobForm]) -> None:
    pairs = managed(forms)
    if not pairs:
        return
    controls = [component for _, component in pairs]
    given = gr.State([component.value for component in controls])
    private = {"show_progress": "hidden", "api_visibility": "private", "queue": False}

    def follow(title: str | None, last: list[Any], *current: Any) -> list[Any]:
        new_given, out = updates(pairs, recommended_for(runtime, title), last, list(current))
        return [new_given, *out]

    checkpoint.change(follow, [checkpoint, given, *controls], [given, *controls], **private)
    # At start the dropdown's own value may not be in yet: ask the runtime which checkpoint is in use.
    demo.load(
        lambda last, *current: follow(current_checkpoint(runtime), last, *current),
        [given, *controls],
        [given, *controls],
        **private,
    )
