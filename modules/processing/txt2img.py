"""txt2img: a job in, images and their generation parameters out.

Per batch: prompts -> conditioning schedules -> seeded noise -> sampler loop over the CFG denoiser ->
(hires fix: upscale + second pass) -> VAE decode -> infotext (+ saving). Everything comes in explicitly: the runtime (model, progress) and
the settings snapshot taken when the job started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modules.processing import hires, sampling
from modules.processing.job import GenerationJob, GenerationResult
from modules.processing.pipeline import Batch, JobPlan, finish_batch, plan_job


def generate(runtime: Any, job: GenerationJob, settings: Mapping[str, Any]) -> GenerationResult:
    if job.enable_hr:
        hires.validate(job)
    bundle = runtime.model()
    plan = plan_job(runtime, bundle, job, settings)
    if job.enable_hr:
        plan.extra.update(hires.infotext_params(job))
    result = plan.empty_result()
    for batch in plan.batches():
        if runtime.progress.interrupted:
            break
        if batch.index:
            runtime.progress.next_job()
        latents = sample_batch(runtime, plan, batch)
        if job.enable_hr and not runtime.progress.should_stop():
            latents = hires.second_pass(runtime, plan, batch, latents)
        finish_batch(runtime, plan, batch, latents, result)
    result.interrupted = runtime.progress.interrupted
    return result


def sample_batch(runtime: Any, plan: JobPlan, batch: Batch) -> Any:
    job, bundle = plan.job, plan.bundle
    conds, unconds = plan.conditioning.batch(batch.prompts, batch.negative_prompts)
    factor = bundle.vae_scale_factor
    request = sampling.SamplingRequest(
        conds=conds,
        unconds=unconds,
        shape=(bundle.latent_channels, job.height // factor, job.width // factor),
        seeds=batch.seeds,
        subseeds=batch.subseeds,
        steps=job.steps,
        sampler_name=job.sampler_name,
        scheduler=job.scheduler,
        cfg_scale=job.cfg_scale,
    )
    return sampling.sample(runtime, plan, request)
