"""txt2img: a job in, images and their generation parameters out.

The recipe: plan the sampling pass (sampler, sigmas, options), plan the job (seeds, prompts,
conditioning schedules), plan the hires pass if asked; then per batch: conditioning -> seeded noise ->
sampler loop over the CFG denoiser -> (hires fix: upscale + second pass) -> VAE decode -> infotext
(+ saving). Everything comes in explicitly: the runtime (model, progress) and the settings snapshot
taken when the job started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from modules.processing import hires, image_cond, sampling_pass
from modules.processing.job import GenerationJob, GenerationResult
from modules.processing.pipeline import Batch, JobPlan, plan_job, run_batches, run_selected_script, use_model

if TYPE_CHECKING:
    from modules.runtime import Runtime


def generate(runtime: Runtime, job: GenerationJob, settings: Mapping[str, Any]) -> GenerationResult:
    if job.script_name and job.script_name != "None":
        return run_selected_script(runtime, job, settings, "txt2img", generate_images)
    return generate_images(runtime, job, settings)


def generate_images(runtime: Runtime, job: GenerationJob, settings: Mapping[str, Any]) -> GenerationResult:
    if job.enable_hr:
        hires.validate(job)  # before loading anything
    bundle = runtime.model(settings)
    first_pass = sampling_pass.plan_pass(
        runtime,
        bundle,
        job,
        settings,
        steps=job.steps,
        sampler_name=job.sampler_name,
        scheduler=job.scheduler,
    )
    plan = plan_job(runtime, bundle, job, settings, first_pass)
    plan.generate = generate_images
    second = hires.plan_second_pass(runtime, plan) if job.enable_hr else None

    def sample(batch: Batch) -> torch.Tensor:
        use_model(runtime, plan, plan.bundle, batch)  # back from the last batch's hires checkpoint
        latents = sample_batch(runtime, plan, batch)
        if second is not None and not runtime.progress.should_stop():
            runtime.scripts.call(plan, "before_hr")
            latents = hires.run_second_pass(runtime, plan, second, batch, latents)
        return latents

    return run_batches(runtime, plan, sample)


def sample_batch(runtime: Runtime, plan: JobPlan, batch: Batch) -> torch.Tensor:
    job, bundle = plan.job, plan.bundle
    conds, unconds = plan.conditioning.batch(batch.prompts, batch.negative_prompts)
    factor = bundle.vae_scale_factor
    latent_hw = (job.height // factor, job.width // factor)
    batch_input = sampling_pass.BatchInput(
        conds=conds,
        unconds=unconds,
        shape=(bundle.latent_channels, *latent_hw),
        seeds=batch.seeds,
        subseeds=batch.subseeds,
        image_cond=image_cond.txt2img_cond(bundle, len(batch.seeds), latent_hw),
    )
    return sampling_pass.run_pass(runtime, plan, plan.first_pass, batch_input)
