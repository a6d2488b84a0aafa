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

from modules.processing import hires
from modules.processing.job import JOB_FIELDS, GenerationJob
from modules.ui import choices, extra_networks, generation, results
from modules.ui.form import JobForm
from modules.ui.generation import Toprow, UiContext


@dataclass
class Txt2ImgTab:
    toprow: Toprow
    form: JobForm
    results: results.Results


def hires_controls(ctx: UiContext, tab: str, form: JobForm) -> None:
    """A1111's "Hires. fix" block, mapped to the job's enable_hr / hr_* fields."""
    registry = ctx.runtime.sampling_registry
    with gr.Accordion("Hires. fix", open=False, elem_id=f"{tab}_hr"):
        with gr.Row():
            form.control("enable_hr", tab)
            # A1111's element id, typo included, for user scripts and styles that reach it.
            final_size = gr.HTML("", elem_id="txtimg_hr_finalres", elem_classes="hr-final-resolution")
        with gr.Row():
            form.control("hr_upscaler", tab, choices=hires.upscaler_names())
            form.control("hr_second_pass_steps", tab)
            form.control("denoising_strength", tab, value=hires.DEFAULT_STRENGTH)
        with gr.Row():
            form.control("hr_scale", tab)
            form.control("hr_resize_x", tab)
            form.control("hr_resize_y", tab)
        with gr.Row():
            form.control("hr_checkpoint_name", tab, choices=ctx.runtime.models.titles())
            form.control("hr_sampler_name", tab, choices=choices.samplers(registry))
            form.control("hr_scheduler", tab, choices=choices.schedulers(registry))
        with gr.Row():
            form.control("hr_prompt", tab, lines=2)
            form.control("hr_negative_prompt", tab, lines=2)
    names = ["enable_hr", "width", "height", "hr_scale", "hr_resize_x", "hr_resize_y"]
    sources = [form.fields[name] for name in names]
    for source in sources:
        source.change(
            lambda *values: hires_size_html(dict(zip(names, values, strict=True))),
            sources,
            final_size,
            queue=False,
            trigger_mode="always_last",
            **generation.PRIVATE,
        )


def hires_size_html(values: dict[str, Any]) -> str:
    """ "Upscaling from 64x64 to 128x128" while hires fix is on, by the rule the job itself follows."""
    try:
        job = GenerationJob(**{name: JOB_FIELDS[name].check(value) for name, value in values.items()})
    except (ValueError, TypeError):
        return ""  # a field mid-edit: say nothing rather than something wrong
    if not job.enable_hr:
        return ""
    size = hires.target_size(job)
    # What the second pass makes: whole latent cells (an eighth of the image), less the cropped ones.
    width, height = (size.width // 8 - size.truncate_x) * 8, (size.height // 8 - size.truncate_y) * 8
    return (
        f"Upscaling from <span class='resolution'>{job.width}x{job.height}</span> "
        f"to <span class='resolution'>{width}x{height}</span>"
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
