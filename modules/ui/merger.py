"""The Checkpoint Merger tab: A/B(/C) checkpoints, method and multiplier -> a new .safetensors file
in the checkpoints folder (the merging itself is ``modules.models.merge``)."""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from modules.models import merge
from modules.models.vae import NONE
from modules.runtime import Runtime

METHODS = [merge.WEIGHTED_SUM, merge.ADD_DIFFERENCE]


def default_name(method: str, a: str, b: str, c: str | None, multiplier: float) -> str:
    """A1111's automatic file name: "0.7(a) + 0.3(b)" or "a + 0.3(b - c)"."""
    if method == merge.ADD_DIFFERENCE:
        return f"{a} + {round(multiplier, 2)}({b} - {c})"
    return f"{round(1 - multiplier, 2)}({a}) + {round(multiplier, 2)}({b})"


def run_merge(
    runtime: Runtime,
    primary: str | None,
    secondary: str | None,
    tertiary: str | None,
    method: str,
    multiplier: float,
    name: str,
    half: bool,
    vae: str,
) -> str:
    """Merge as asked and rescan the checkpoints; the message to show (gr.Error on bad input)."""
    if not primary or not secondary:
        raise gr.Error("Choose the primary (A) and secondary (B) models.")
    if method == merge.ADD_DIFFERENCE and not tertiary:
        raise gr.Error("Add difference needs a tertiary model (C).")
    models = runtime.models
    a, b = models.find(primary), models.find(secondary)
    c = models.find(tertiary) if method == merge.ADD_DIFFERENCE and tertiary else None
    stem = name.strip() or default_name(
        method, a.model_name, b.model_name, c.model_name if c else None, multiplier
    )
    output = runtime.paths.ckpt_dir / f"{stem}.safetensors"
    if output.exists():
        raise gr.Error(f"{output.name} already exists; choose another name.")
    bake = next((v.path for v in models.vaes() if v.name == vae), None) if vae != NONE else None
    request = merge.MergeRequest(
        primary=a.path,
        secondary=b.path,
        tertiary=c.path if c else None,
        output=output,
        method=method,
        multiplier=float(multiplier),
        save_as_half=bool(half),
        bake_in_vae=Path(bake) if bake else None,
    )
    # Merging reads whole checkpoints: wait for (and block) generations rather than compete for memory.
    try:
        runtime.exclusive(lambda: merge.merge_checkpoints(request, models.hash_cache), label="merge")
    except ValueError as error:
        raise gr.Error(str(error)) from error
    models.refresh()
    return f"<p>Checkpoint saved to {html.escape(str(output))}</p>"


def build(runtime: Runtime, other_lists: list[tuple[gr.Dropdown, list[str]]] = ()) -> None:
    """The tab; ``other_lists`` are the app's other checkpoint dropdowns (with the choices that come
    before the titles, e.g. "Use same checkpoint"), given the merged file as soon as it exists."""
    titles = runtime.models.titles()
    with gr.Row():
        with gr.Column(elem_id="modelmerger_models"):
            gr.Markdown(
                "A merger of the two checkpoints will be generated in your checkpoint directory "
                "(weighted sum: A * (1 - M) + B * M; add difference: A + (B - C) * M)."
            )
            with gr.Row():
                primary = gr.Dropdown(
                    titles, label="Primary model (A)", elem_id="modelmerger_primary_model_name"
                )
                secondary = gr.Dropdown(
                    titles, label="Secondary model (B)", elem_id="modelmerger_secondary_model_name"
                )
                tertiary = gr.Dropdown(
                    titles, label="Tertiary model (C)", elem_id="modelmerger_tertiary_model_name"
                )
            name = gr.Textbox(label="Custom Name (Optional)", elem_id="modelmerger_custom_name")
            multiplier = gr.Slider(
                0.0,
                1.0,
                value=0.3,
                step=0.05,
                label="Multiplier (M) - set to 0 to get model A",
                elem_id="modelmerger_interp_amount",
            )
            method = gr.Radio(
                METHODS,
                value=merge.WEIGHTED_SUM,
                label="Interpolation Method",
                elem_id="modelmerger_interp_method",
            )
            half = gr.Checkbox(label="Save as float16", value=False, elem_id="modelmerger_save_as_half")
            vae = gr.Dropdown(
                [NONE, *(v.name for v in runtime.models.vaes())],
                value=NONE,
                label="Bake in VAE",
                elem_id="modelmerger_bake_in_vae",
            )
            submit = gr.Button("Merge", variant="primary", elem_id="modelmerger_merge")
        with gr.Column():
            result = gr.HTML(elem_id="modelmerger_result")

    def merge_and_list(*values: object) -> tuple:
        message = run_merge(runtime, *values)
        titles = runtime.models.titles()
        own = [gr.update(choices=titles)] * 3
        return (message, *own, *(gr.update(choices=[*before, *titles]) for _, before in other_lists))

    submit.click(
        merge_and_list,
        [primary, secondary, tertiary, method, multiplier, name, half, vae],
        [result, primary, secondary, tertiary, *(dropdown for dropdown, _ in other_lists)],
        api_visibility="private",
    )
