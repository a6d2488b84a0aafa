"""txt2img: a job in, images and their generation parameters out.

Per batch: prompts -> conditioning schedules -> seeded noise -> sampler loop over the CFG denoiser ->
(hires fix: upscale + second pass) -> VAE decode -> infotext (+ saving). Everything comes in explicitly: the runtime (model, progress) and
the settings snapshot taken when the job started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modules.processing import hires, image_cond, sampling_pass
from modules.processing.job import GenerationJob, GenerationResult
from modules.processing.pipeline import Batch, JobPlan, plan_job, run_batches, run_selected_script


def generate(runtime: Any, job: GenerationJob, settings: Mapping[str, Any]) -> GenerationResult:
    if job.script_name and job.script_name != "None":
        return run_selected_script(runtime, job, settings, "txt2img", generate_images)
    return generate_images(runtime, job, settings)


def generate_images(runtime: Any, job: GenerationJob, settings: Mapping[str, Any]) -> GenerationResult:
    if job.enable_hr:
        hires.validate(job)
    plan = plan_job(runtime, runtime.model(settings), job, settings)
    plan.generate = generate_images
    if job.enable_hr:
        plan.extra.update(hires.infotext_params(job))

    def sample(batch: Batch) -> Any:
        latents = sample_batch(runtime, plan, batch)
        if job.enable_hr and not runtime.progress.should_stop():
            runtime.scripts.call(plan, "before_hr")
            latents = hires.second_pass(runtime, plan, batch, latents)
        return latents

    return run_batches(runtime, plan, sample)


def sample_batch(runtime: Any, plan: JobPlan, batch: Batch) -> Any:
    job, bundle = plan.job, plan.bundle
    conds, unconds = plan.conditioning.batch(batch.prompts, batch.negative_prompts)
    factor = bundle.vae_scale_factor
    latent_hw = (job.height // factor, job.width // factor)
    request = sampling_pass.SamplingRequest(
        conds=conds,
        unconds=unconds,
        shape=(bundle.latent_channels, *latent_hw),
        seeds=batch.seeds,
        subseeds=batch.subseeds,
        steps=job.steps,
        sampler_name=job.sampler_name,
        scheduler=job.scheduler,
        cfg_scale=job.cfg_scale,
        image_cond=image_cond.txt2img_cond(bundle, len(batch.seeds), latent_hw),
    )
    return sampling_pass.sample(runtime, plan, request)
