"""The txt2img tab: prompt boxes, generation parameters, Generate/Interrupt/Skip, gallery and info.

Holds no logic of its own: it turns the controls into a ``GenerationJob`` and calls the runtime.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from modules.processing.job import GenerationJob, GenerationResult
from modules.runtime import Runtime
from modules.ui import choices
from modules.ui.progress import run_with_progress


@dataclass
class GenerationControls:
    """The parameter controls shared by txt2img and img2img, in the order the handler receives them."""

    prompt: gr.Textbox
    negative_prompt: gr.Textbox
    sampler_name: gr.Dropdown
    scheduler: gr.Dropdown
    steps: gr.Slider
    width: gr.Slider
    height: gr.Slider
    n_iter: gr.Slider
    batch_size: gr.Slider
    cfg_scale: gr.Slider
    seed: gr.Number
    subseed: gr.Number
    subseed_strength: gr.Slider
    seed_resize_from_w: gr.Slider
    seed_resize_from_h: gr.Slider

    def inputs(self) -> list[gr.components.Component]:
        return [getattr(self, name) for name in self.__dataclass_fields__]

    @classmethod
    def to_job(cls, values: list[Any], **extra: Any) -> GenerationJob:
        named = dict(zip(cls.__dataclass_fields__, values, strict=True))
        for key in (
            "steps",
            "width",
            "height",
            "n_iter",
            "batch_size",
            "seed",
            "subseed",
            "seed_resize_from_w",
            "seed_resize_from_h",
        ):
            named[key] = int(named[key])
        return GenerationJob(**named, **extra)


def prompt_boxes(tab: str) -> tuple[gr.Textbox, gr.Textbox]:
    prompt = gr.Textbox(
        label="Prompt", elem_id=f"{tab}_prompt", lines=3, placeholder="Prompt (press Ctrl+Enter to generate)"
    )
    negative = gr.Textbox(
        label="Negative prompt",
        elem_id=f"{tab}_neg_prompt",
        lines=2,
        placeholder="Negative prompt (press Ctrl+Enter to generate)",
    )
    return prompt, negative


def parameter_controls(
    runtime: Runtime, tab: str, prompt: gr.Textbox, negative: gr.Textbox
) -> tuple[GenerationControls, gr.Button]:
    """The parameter controls, and the "reuse seed" button (wired by the tab, which knows the last seed)."""
    with gr.Row():
        sampler = gr.Dropdown(
            label="Sampling method",
            choices=choices.samplers(runtime.sampling_registry),
            value="DPM++ 2M",
            elem_id=f"{tab}_sampling",
        )
        scheduler = gr.Dropdown(
            label="Schedule type",
            choices=choices.schedulers(runtime.sampling_registry),
            value="Automatic",
            elem_id=f"{tab}_scheduler",
        )
        steps = gr.Slider(1, 150, value=20, step=1, label="Sampling steps", elem_id=f"{tab}_steps")
    with gr.Row():
        with gr.Column(scale=4):
            width = gr.Slider(64, 2048, value=512, step=8, label="Width", elem_id=f"{tab}_width")
            height = gr.Slider(64, 2048, value=512, step=8, label="Height", elem_id=f"{tab}_height")
        swap = gr.Button("⇅", elem_id=f"{tab}_res_switch_btn", scale=0, min_width=40)
        with gr.Column(scale=2):
            n_iter = gr.Slider(1, 100, value=1, step=1, label="Batch count", elem_id=f"{tab}_batch_count")
            batch_size = gr.Slider(1, 8, value=1, step=1, label="Batch size", elem_id=f"{tab}_batch_size")
    swap.click(lambda w, h: (h, w), [width, height], [width, height], show_progress="hidden")
    cfg = gr.Slider(1.0, 30.0, value=7.0, step=0.5, label="CFG Scale", elem_id=f"{tab}_cfg_scale")
    with gr.Row():
        seed = gr.Number(label="Seed", value=-1, precision=0, elem_id=f"{tab}_seed", scale=4)
        random_seed = gr.Button("🎲", elem_id=f"{tab}_random_seed", scale=0, min_width=40)
        reuse_seed = gr.Button("♻", elem_id=f"{tab}_reuse_seed", scale=0, min_width=40)
    random_seed.click(lambda: -1, None, seed, show_progress="hidden")
    with gr.Accordion("Extra seed options", open=False, elem_id=f"{tab}_subseed_show"):
        with gr.Row():
            subseed = gr.Number(label="Variation seed", value=-1, precision=0, elem_id=f"{tab}_subseed")
            subseed_strength = gr.Slider(
                0.0, 1.0, value=0.0, step=0.01, label="Variation strength", elem_id=f"{tab}_subseed_strength"
            )
        with gr.Row():
            resize_w = gr.Slider(
                0, 2048, value=0, step=8, label="Resize seed from width", elem_id=f"{tab}_seed_resize_from_w"
            )
            resize_h = gr.Slider(
                0, 2048, value=0, step=8, label="Resize seed from height", elem_id=f"{tab}_seed_resize_from_h"
            )
    controls = GenerationControls(
        prompt,
        negative,
        sampler,
        scheduler,
        steps,
        width,
        height,
        n_iter,
        batch_size,
        cfg,
        seed,
        subseed,
        subseed_strength,
        resize_w,
        resize_h,
    )
    return controls, reuse_seed


def result_text(result: GenerationResult) -> str:
    return result.infotexts[0] if result.infotexts else ""


def info_html(text: str) -> str:
    return f"<div class='infotext'>{html.escape(text).replace(chr(10), '<br>')}</div>"


def build(runtime: Runtime) -> None:
    """Create the txt2img tab's components inside the current Blocks context."""
    tab = "txt2img"
    with gr.Row(elem_id=f"{tab}_toprow"):
        with gr.Column(scale=6):
            prompt, negative = prompt_boxes(tab)
        with gr.Column(scale=1, min_width=160):
            generate = gr.Button("Generate", variant="primary", elem_id=f"{tab}_generate")
            with gr.Row():
                interrupt = gr.Button("Interrupt", elem_id=f"{tab}_interrupt", visible=False)
                skip = gr.Button("Skip", elem_id=f"{tab}_skip", visible=False)
    with gr.Row():
        with gr.Column(scale=1, elem_id=f"{tab}_settings"):
            controls, reuse_seed = parameter_controls(runtime, tab, prompt, negative)
        with gr.Column(scale=1, elem_id=f"{tab}_results"):
            progress = gr.HTML(elem_id=f"{tab}_progress")
            preview = gr.Image(
                label="Live preview", visible=False, format="png", elem_id=f"{tab}_preview", interactive=False
            )
            gallery = gr.Gallery(
                label="Output", elem_id=f"{tab}_gallery", columns=4, format="png", interactive=False
            )
            info = gr.HTML(elem_id=f"html_info_{tab}")
            infotext = gr.Textbox(visible=False, elem_id=f"generation_info_{tab}")
            seed_state = gr.State(-1)

    def on_generate(*values: Any) -> Iterator[tuple]:
        job = GenerationControls.to_job(list(values))
        yield (
            gr.update(visible=False),
            gr.update(visible=True),
            gr.update(visible=True),
            "",
            gr.update(visible=True, value=None),
            gr.update(),
            gr.update(),
            gr.update(),
            gr.update(),
        )
        work = lambda: runtime.txt2img(job)  # noqa: E731
        for bar, image, result, finished in run_with_progress(runtime.progress, runtime.queue_lock, work):
            if not finished:
                yield (
                    gr.update(),
                    gr.update(),
                    gr.update(),
                    bar,
                    gr.update(value=image) if image is not None else gr.update(),
                    gr.update(),
                    gr.update(),
                    gr.update(),
                    gr.update(),
                )
                continue
            buttons = (gr.update(visible=True), gr.update(visible=False), gr.update(visible=False))
            if isinstance(result, Exception):
                message = f"<div class='error'>Error: {html.escape(str(result))}</div>"
                yield (*buttons, message, gr.update(visible=False), gr.update(), "", "", gr.update())
                return
            text = result_text(result)
            yield (
                *buttons,
                "",
                gr.update(visible=False),
                result.images,
                info_html(text),
                text,
                result.seeds[0],
            )

    outputs = [generate, interrupt, skip, progress, preview, gallery, info, infotext, seed_state]
    generate.click(on_generate, controls.inputs(), outputs, show_progress="hidden", api_name="txt2img")
    interrupt.click(runtime.progress.interrupt, None, None, queue=False)
    skip.click(runtime.progress.skip, None, None, queue=False)
    reuse_seed.click(lambda s: s, seed_state, controls.seed, show_progress="hidden")
