"""Hires fix: upscale the first pass (in latent space or as pixels) and refine it with a second,
img2img-like pass that has its own steps, denoising strength, sampler and prompt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from PIL import Image

from modules.models.bundle import ModelBundle
from modules.processing import image_cond, sampling_pass, vae
from modules.processing.job import USE_SAME_CHECKPOINT, GenerationJob
from modules.processing.job import infotext_key as key
from modules.processing.pipeline import Batch, JobPlan, make_encoder, use_model
from modules.processing.prompt_conds import ConditioningBuilder
from modules.prompting import extract_extra_networks, strip_comments

if TYPE_CHECKING:
    from modules.runtime import Runtime

DEFAULT_STRENGTH = 0.7

# name -> (torch interpolate mode, antialias); these work on latents, without a VAE round trip.
LATENT_UPSCALERS = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
IMAGE_UPSCALERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}


def upscaler_names() -> list[str]:
    return [*LATENT_UPSCALERS, *IMAGE_UPSCALERS]


@dataclass(frozen=True)
class HiresSize:
    width: int  # the size the upscaled image is made at
    height: int
    truncate_x: int = 0  # latent columns/rows to crop so a resize-to target is filled exactly
    truncate_y: int = 0


def target_size(job: GenerationJob) -> HiresSize:
    """A1111's rule: scale by hr_scale, or resize to hr_resize_x/y keeping the aspect (cropping to fill)."""
    w, h = job.width, job.height
    if not job.hr_resize_x and not job.hr_resize_y:
        return HiresSize(int(w * job.hr_scale), int(h * job.hr_scale))
    if not job.hr_resize_y:
        return HiresSize(job.hr_resize_x, job.hr_resize_x * h // w)
    if not job.hr_resize_x:
        return HiresSize(job.hr_resize_y * w // h, job.hr_resize_y)
    if w / h < job.hr_resize_x / job.hr_resize_y:
        x, y = job.hr_resize_x, job.hr_resize_x * h // w
    else:
        x, y = job.hr_resize_y * w // h, job.hr_resize_y
    return HiresSize(x, y, (x - job.hr_resize_x) // 8, (y - job.hr_resize_y) // 8)


def validate(job: GenerationJob) -> None:
    if job.hr_upscaler not in LATENT_UPSCALERS and job.hr_upscaler not in IMAGE_UPSCALERS:
        raise ValueError(f"hr_upscaler {job.hr_upscaler!r} is not one of: {', '.join(upscaler_names())}")
    size = target_size(job)
    if not (8 <= size.width <= 4096 and 8 <= size.height <= 4096):
        raise ValueError(f"hires fix target size {size.width}x{size.height} is out of range (8..4096)")


def infotext_params(job: GenerationJob, settings: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if job.hr_resize_x or job.hr_resize_y:
        params[key("hr_resize_x")] = f"{job.hr_resize_x}x{job.hr_resize_y}"
    else:
        params[key("hr_scale")] = job.hr_scale
    if job.hr_second_pass_steps:
        params[key("hr_second_pass_steps")] = job.hr_second_pass_steps
    params[key("hr_upscaler")] = job.hr_upscaler
    params[key("denoising_strength")] = strength(job)
    sampler_name, scheduler = hires_sampler(job)
    if sampler_name != job.sampler_name:
        params[key("hr_sampler_name")] = sampler_name
    if scheduler != job.scheduler:
        params[key("hr_scheduler")] = scheduler
    hr_prompt, hr_negative = hires_prompts(job, settings)
    if hr_prompt and job.hr_prompt != job.prompt:
        params[key("hr_prompt")] = hr_prompt
    if hr_negative and job.hr_negative_prompt != job.negative_prompt:
        params[key("hr_negative_prompt")] = hr_negative
    return params


def hires_prompts(job: GenerationJob, settings: Mapping[str, Any]) -> tuple[str, str]:
    """The hires prompts ("" = the first pass's), ``#`` comments stripped when "Enable comments" is on."""
    prompt, negative = job.hr_prompt, job.hr_negative_prompt
    if settings["enable_prompt_comments"]:
        prompt, negative = strip_comments(prompt), strip_comments(negative)
    return prompt, negative


def hires_sampler(job: GenerationJob) -> tuple[str, str]:
    """The second pass's sampler and schedule type; A1111's "Use same ..." (or empty) means the first's."""
    sampler = job.hr_sampler_name
    scheduler = job.hr_scheduler
    same_sampler = not sampler or sampler == "Use same sampler"
    same_scheduler = not scheduler or scheduler == "Use same scheduler"
    return (job.sampler_name if same_sampler else sampler, job.scheduler if same_scheduler else scheduler)


def strength(job: GenerationJob) -> float:
    return DEFAULT_STRENGTH if job.denoising_strength is None else float(job.denoising_strength)


def upscale(
    plan: JobPlan, latents: torch.Tensor, decoded: list[Image.Image] | None, size: HiresSize, seed: int
) -> tuple[torch.Tensor, list[Image.Image] | None]:
    """The first pass's latents at the hires size: interpolated, or (an image upscaler) the first pass's
    pictures, ``decoded``, resized and encoded by the model now in use; and those resized pictures."""
    bundle, job = plan.model, plan.job
    factor = bundle.vae_scale_factor
    hw = (size.height // factor, size.width // factor)
    images = None
    if decoded is None:
        mode, antialias = LATENT_UPSCALERS[job.hr_upscaler]
        upscaled = F.interpolate(latents, size=hw, mode=mode, antialias=antialias)
    else:
        images = [img.resize((size.width, size.height), IMAGE_UPSCALERS[job.hr_upscaler]) for img in decoded]
        upscaled = vae.encode(bundle, images, torch.Generator().manual_seed(seed))
    ty, tx = size.truncate_y, size.truncate_x
    return upscaled[
        :, :, ty // 2 : upscaled.shape[2] - (ty + 1) // 2, tx // 2 : upscaled.shape[3] - (tx + 1) // 2
    ], images


def second_pass_cond(
    plan: JobPlan, init_latent: torch.Tensor, images: list[Image.Image] | None, size: HiresSize, seed: int
) -> torch.Tensor | None:
    """The hires pass's extra UNet channels. For an inpainting model with "inpainting conditioning mask
    strength" w below 1, A1111 conditions on (1 - w) x the upscaled image, not on the blank image: the
    decoded upscaled latents, or (A1111 quirk, kept for the same images) an image upscaler's pictures
    as 0..1 where the VAE takes -1..1. Cropped as the latents are where a resize-to target truncates."""
    bundle = plan.model
    hw = tuple(init_latent.shape[-2:])
    weight = float(plan.settings["inpainting_mask_weight"])
    if not image_cond.uses_inpainting_cond(bundle) or weight >= 1:
        return image_cond.txt2img_cond(bundle, init_latent.shape[0], hw)
    if images is None:
        pixels = vae.decode_pixels(bundle, init_latent).float()
    else:
        factor = bundle.vae_scale_factor
        top, left = size.truncate_y // 2 * factor, size.truncate_x // 2 * factor
        pixels = (vae.images_to_tensor(images) + 1) / 2
        pixels = pixels[:, :, top : top + hw[0] * factor, left : left + hw[1] * factor]
    return image_cond.pixels_cond(bundle, pixels, None, hw, weight, torch.Generator().manual_seed(seed))


@dataclass
class SecondPass:
    """The hires pass, planned once per job: its sampling plan, size and prompt schedules."""

    sampling: sampling_pass.SamplingPlan
    size: HiresSize
    conditioning: ConditioningBuilder
    bundle: ModelBundle  # the job's model, or the hires checkpoint's


def hires_checkpoint(job: GenerationJob) -> str | None:
    """The checkpoint the hires pass runs on, None for the first pass's ("Use same checkpoint")."""
    name = job.hr_checkpoint_name
    return None if not name or name == USE_SAME_CHECKPOINT else name


def plan_second_pass(runtime: Runtime, plan: JobPlan) -> SecondPass:
    """Plan the hires pass (loading its checkpoint if it has one) and add its parameters-text pairs."""
    job, settings = plan.job, plan.settings
    name = hires_checkpoint(job)
    # The job's own view of that checkpoint, with the job's VAE choice; nothing shared is changed.
    bundle = runtime.model({**settings, "sd_model_checkpoint": name}) if name else plan.bundle
    sampler_name, scheduler = hires_sampler(job)
    sampling = sampling_pass.plan_pass(
        runtime,
        bundle,
        job,
        settings,
        steps=job.hr_second_pass_steps or job.steps,
        sampler_name=sampler_name,
        scheduler=scheduler,
        strength=strength(job),
        fix_steps=True,
        is_hires=True,
    )
    # The second pass's prompt schedule sees fractions 1.0..2.0 and integers from steps + 1 (A1111).
    builder = ConditioningBuilder(
        make_encoder(runtime, bundle, job, settings),
        plan.first_pass.schedule_steps,
        hires_steps=sampling.schedule_steps,
        use_old_scheduling=bool(settings["use_old_scheduling"]),
    )
    plan.extra.update(infotext_params(job, settings))
    if bundle is not plan.bundle:
        # A1111 writes the checkpoint's short title, "name [hash]".
        short = f"{bundle.name} [{bundle.short_hash}]" if bundle.short_hash else bundle.name
        plan.extra[key("hr_checkpoint_name")] = short
    plan.extra.update({k: v for k, v in sampling.infotext.items() if k not in plan.extra})
    return SecondPass(sampling, target_size(job), builder, bundle)


def run_second_pass(
    runtime: Runtime, plan: JobPlan, second: SecondPass, batch: Batch, latents: torch.Tensor
) -> torch.Tensor:
    job = plan.job
    # An image upscaler works on the first pass's pictures, decoded by the first pass's model (A1111).
    decoded = None if job.hr_upscaler in LATENT_UPSCALERS else vae.decode(plan.model, latents)
    if use_model(runtime, plan, second.bundle, batch):
        second.conditioning.clear_cache()  # the networks were patched into this model afresh
    # The batch's prompts are already free of <lora:...> tags; a separate hires prompt is stripped here.
    hr_prompt, hr_negative = hires_prompts(job, plan.settings)
    prompts = [extract_extra_networks(hr_prompt)[0] if hr_prompt else p for p in batch.prompts]
    negatives = [hr_negative or n for n in batch.negative_prompts]
    conds, unconds = second.conditioning.batch(prompts, negatives)
    if second.conditioning.old_scheduling_changed:
        plan.extra[key("use_old_scheduling")] = True
    init_latent, upscaled = upscale(plan, latents, decoded, second.size, batch.seeds[0])
    runtime.progress.textinfo = "hires fix"
    batch_input = sampling_pass.BatchInput(
        conds=conds,
        unconds=unconds,
        shape=tuple(init_latent.shape[1:]),
        seeds=batch.seeds,
        subseeds=batch.subseeds,
        init_latent=init_latent,
        image_cond=second_pass_cond(plan, init_latent, upscaled, second.size, batch.seeds[0]),
    )
    return sampling_pass.run_pass(runtime, plan, second.sampling, batch_input)
