"""The txt2img tab: prompt row, generation parameters, hires fix, gallery and parameters text.

Holds no logic of its own: it turns the controls into a ``GenerationJob`` and calls the runtime.
The first fifteen inputs of the "/txt2img" Gradio endpoint keep their order (prompt, negative,
sampler, scheduler, steps, width, height, batch count, batch size, CFG, seed, variation seed,
strength, resize w/h) so existing Gradio-client scripts keep working; newer ones follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from modules.processing.job import GenerationJob
from modules.ui import choices, extra_networks, generation, results
from modules.ui.form import USE_SAME_SAMPLER, USE_SAME_SCHEDULER, JobForm
from modules.ui.generation import Toprow, UiContext

HIRES_UPSCALERS = (
    "Latent",
    "Latent (antialiased)",
    "Latent (bicubic)",
    "Latent (nearest)",
    "Lanczos",
    "Nearest",
)


@dataclass
class Txt2ImgTab:
    toprow: Toprow
    form: JobForm
    results: results.Results


def hires_controls(ctx: UiContext, tab: str, form: JobForm) -> None:
    """A1111's "Hires. fix" block, mapped to the job's enable_hr / hr_* fields."""
    registry = ctx.runtime.sampling_registry
    with gr.Accordion("Hires. fix", open=False, elem_id=f"{tab}_hr"):
        form.add("enable_hr", gr.Checkbox(label="Enable hires. fix", value=False, elem_id=f"{tab}_enable_hr"))
        with gr.Row():
            form.add(
                "hr_upscaler",
                gr.Dropdown(
                    label="Upscaler",
                    choices=list(HIRES_UPSCALERS),
                    value="Latent",
                    elem_id=f"{tab}_hr_upscaler",
                ),
            )
            form.add(
                "hr_second_pass_steps",
                gr.Slider(0, 150, value=0, step=1, label="Hires steps", elem_id=f"{tab}_hires_steps"),
            )
            form.add(
                "denoising_strength",
                gr.Slider(
                    0.0,
                    1.0,
                    value=0.7,
                    step=0.01,
                    label="Denoising strength",
                    elem_id=f"{tab}_denoising_strength",
                ),
            )
        with gr.Row():
            form.add(
                "hr_scale",
                gr.Slider(1.0, 4.0, value=2.0, step=0.05, label="Upscale by", elem_id=f"{tab}_hr_scale"),
            )
            form.add(
                "hr_resize_x",
                gr.Slider(0, 2048, value=0, step=8, label="Resize width to", elem_id=f"{tab}_hr_resize_x"),
            )
            form.add(
                "hr_resize_y",
                gr.Slider(0, 2048, value=0, step=8, label="Resize height to", elem_id=f"{tab}_hr_resize_y"),
            )
        with gr.Row():
            form.add(
                "hr_sampler_name",
                gr.Dropdown(
                    label="Hires sampling method",
                    choices=[USE_SAME_SAMPLER, *choices.samplers(registry)],
                    value=USE_SAME_SAMPLER,
                    elem_id=f"{tab}_hr_sampler",
                ),
            )
            form.add(
                "hr_scheduler",
                gr.Dropdown(
                    label="Hires schedule type",
                    choices=[USE_SAME_SCHEDULER, *choices.schedulers(registry)],
                    value=USE_SAME_SCHEDULER,
                    elem_id=f"{tab}_hr_scheduler",
                ),
            )
        with gr.Row():
            form.add("hr_prompt", gr.Textbox("", label="Hires prompt", lines=2, elem_id=f"{tab}_hr_prompt"))
            form.add(
                "hr_negative_prompt",
                gr.Textbox("", label="Hires negative prompt", lines=2, elem_id=f"{tab}_hr_neg_prompt"),
            )


def build(ctx: UiContext) -> Txt2ImgTab:
    """Create the txt2img tab's components inside the current Tab context."""
    tab = "txt2img"
    toprow, networks, form = generation.start_tab(ctx, tab)
    with gr.Row():
        with gr.Column(scale=1, elem_id=f"{tab}_settings"):
            generation.sampler_controls(ctx.runtime, tab, form)
            generation.size_controls(tab, form)
            generation.cfg_control(tab, form)
            reuse = generation.seed_controls(tab, form)
            # Newer inputs after the original fifteen (see the module docstring).
            form.add("styles", toprow.styles)
            hires_controls(ctx, tab, form)
            script_ui = generation.script_controls(ctx, tab, form)
        with gr.Column(scale=1, elem_id=f"{tab}_results"):
            res = results.build(ctx.runtime, tab)
    count = len(form.fields)

    def prepare(values: list[Any]) -> tuple[GenerationJob, generation.Runner]:
        job = form.to_job(values[:count])
        script_ui.apply(job, values[count:])
        return job, ctx.runtime.txt2img

    script_inputs = script_ui.inputs()
    generation.wire_generate(
        ctx, tab, toprow, res, form.inputs() + script_inputs, prepare, optional=len(script_inputs)
    )
    extra_networks.wire(ctx.runtime, networks, toprow.extra_networks, toprow.prompt)
    generation.wire_seed_reuse(res, form, reuse)
    generation.wire_token_counters(ctx, toprow, form.fields["steps"])
    generation.wire_paste(ctx, toprow, form)
    return Txt2ImgTab(toprow, form, res)
