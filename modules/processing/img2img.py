"""img2img and inpainting: a job with init images (and a mask) in, images and parameters out.

The init image is framed to the job's size (resize mode), encoded by the VAE and noised to the level the
denoising strength selects; the sampler then runs the rest of the schedule. With a mask, only the
masked area is repainted: the latent is held to the original outside it at every step (any model), a
9-channel inpainting model also sees the masked image, and the result is pasted back over the original.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from modules.processing import image_cond, imageops, sampling_pass, vae
from modules.processing.job import (
    INPAINT_AREAS,
    MASK_MODES,
    MASKED_CONTENT,
    RESIZE_MODES,
    GenerationJob,
    GenerationResult,
    MaskedContent,
    ResizeMode,
)
from modules.processing.job import infotext_key as key
from modules.processing.pipeline import Batch, JobPlan, plan_job, run_batches, run_selected_script

if TYPE_CHECKING:
    from modules.models.bundle import ModelBundle
    from modules.runtime import Runtime

DEFAULT_STRENGTH = 0.75


@dataclass
class PreparedImage:
    """One init image framed for sampling, and how to put the result back."""

    image: Image.Image  # what gets encoded, at the job's size
    original: Image.Image | None = None  # what the result is pasted over: the framed input, or the input
    mask: Image.Image | None = None  # at the job's size, 255 = repaint (blurred)
    latent_mask: Image.Image | None = None  # at the job's size: what the latents keep and "fill" fills
    overlay_mask: Image.Image | None = None  # at the original's size, for pasting back
    region: tuple[int, int, int, int] | None = None  # "only masked": the crop in the original


def strength(job: GenerationJob) -> float:
    return DEFAULT_STRENGTH if job.denoising_strength is None else float(job.denoising_strength)


def prepare(job: GenerationJob, image: Image.Image, round_mask: bool = True) -> PreparedImage:
    """``round_mask`` (setting "mask_round") also thresholds a transparent mask's alpha, as in A1111."""
    image = image.convert("RGB")
    if job.mask is None:
        return PreparedImage(frame(job, image, None))
    mask = imageops.prepare_mask(
        job.mask, image.size, bool(job.inpainting_mask_invert), job.mask_blur, round_mask
    )
    latent = None if job.latent_mask is None else job.latent_mask.convert("L").resize(image.size)
    region = None
    if job.inpaint_full_res:
        found = imageops.masked_region(mask, job.inpaint_full_res_padding)
        if found is not None:
            region = imageops.expand_region_to_ratio(found, job.width, job.height, image.width, image.height)
    crop = frame(job, image, region)
    crop_mask = frame(job, mask.convert("RGB"), region).convert("L")
    # A1111 pastes an "only masked" crop back into the original with the blurred mask as is; a
    # whole-picture result over the original as framed to the job's size (so it is returned at the
    # job's size, content in place) with the blurred mask doubled.
    original, overlay_mask = (image, mask) if region is not None else (crop, imageops.double_mask(crop_mask))
    crop_latent = crop_mask if latent is None else frame(job, latent.convert("RGB"), region).convert("L")
    if job.inpainting_fill != MaskedContent.ORIGINAL:
        # A1111 fills for "latent noise"/"latent nothing" too: their latents replace only the rounded
        # latent mask, and the VAE (and a 9-channel model's masked image) see the filled pixels.
        crop = imageops.fill_masked(crop, crop_latent)
    return PreparedImage(
        crop,
        original=original,
        mask=crop_mask,
        latent_mask=crop_latent,
        overlay_mask=overlay_mask,
        region=region,
    )


def frame(job: GenerationJob, picture: Image.Image, region: tuple[int, int, int, int] | None) -> Image.Image:
    """The input (image or mask) at the job's size: the "only masked" crop resized and filled, as A1111
    does, or the whole picture by the job's resize mode."""
    if region is not None:
        return imageops.resize_image(ResizeMode.RESIZE_AND_FILL, picture.crop(region), job.width, job.height)
    return imageops.resize_image(job.resize_mode, picture, job.width, job.height)


def validate(job: GenerationJob) -> None:
    if not job.init_images:
        raise ValueError("init_images: img2img needs at least one input image")
    if len(job.init_images) not in (1, job.batch_size):
        raise ValueError(
            f"init_images: got {len(job.init_images)} images for batch size {job.batch_size}; "
            "pass one image or one per batch item"
        )
    if not 0 <= strength(job) <= 1:
        raise ValueError(f"denoising_strength must be between 0 and 1 (got {job.denoising_strength})")
    if job.inpainting_fill not in range(4):
        raise ValueError(f"inpainting_fill must be 0..3 (got {job.inpainting_fill})")


def generate(runtime: Runtime, job: GenerationJob, settings: Mapping[str, Any]) -> GenerationResult:
    if job.script_name and job.script_name != "None":
        return run_selected_script(runtime, job, settings, "img2img", generate_images)
    return generate_images(runtime, job, settings)


def generate_images(runtime: Runtime, job: GenerationJob, settings: Mapping[str, Any]) -> GenerationResult:
    validate(job)
    prepared = [prepare(job, image, bool(settings["mask_round"])) for image in job.init_images]
    if len(prepared) == 1:
        prepared = prepared * job.batch_size
    bundle = runtime.model(settings)
    # The pass runs the tail of a longer schedule; prompt schedules count its steps, so [a:b:0.5]
    # switches halfway through what actually runs.
    first_pass = sampling_pass.plan_pass(
        runtime,
        bundle,
        job,
        settings,
        steps=job.steps,
        sampler_name=job.sampler_name,
        scheduler=job.scheduler,
        strength=strength(job),
        fix_steps=bool(settings["img2img_fix_steps"]),
        noise_multiplier=job.initial_noise_multiplier or float(settings["initial_noise_multiplier"]),
    )
    plan = plan_job(runtime, bundle, job, settings, first_pass, mode="img2img")
    plan.generate = generate_images
    plan.extra.update(infotext_params(job))
    overlay = bool(settings["img2img_overlay_original"])
    depth_cond = job_depth_cond(runtime, plan, prepared)
    return run_batches(
        runtime,
        plan,
        lambda batch: sample_batch(runtime, plan, batch, prepared, depth_cond),
        postprocess=paste_back(prepared, overlay),
    )


def infotext_params(job: GenerationJob) -> dict[str, Any]:
    params: dict[str, Any] = {key("denoising_strength"): strength(job)}
    if job.resize_mode:
        params[key("resize_mode")] = RESIZE_MODES[job.resize_mode]
    if job.mask is not None:
        params[key("mask_blur")] = job.mask_blur
        if job.inpainting_mask_invert:
            params[key("inpainting_mask_invert")] = MASK_MODES[1]
        params[key("inpainting_fill")] = MASKED_CONTENT[job.inpainting_fill]
        if job.inpaint_full_res:
            params[key("inpaint_full_res")] = INPAINT_AREAS[1]
            params[key("inpaint_full_res_padding")] = job.inpaint_full_res_padding
    return params


def paste_back(prepared: list[PreparedImage], overlay: bool):  # noqa: ANN201 - finish_batch's postprocess
    """Put inpainted pixels back over the original; "only masked" crops always go back into place."""

    def postprocess(offset: int, image: Image.Image) -> Image.Image:
        item = prepared[offset]
        if item.original is None or not (overlay or item.region):
            return image
        mask = item.overlay_mask if overlay else Image.new("L", item.original.size, 255)
        return imageops.overlay_original(image, item.original, mask, item.region)

    return postprocess


def job_depth_cond(runtime: Runtime, plan: JobPlan, prepared: list[PreparedImage]) -> torch.Tensor | None:
    """A depth model's extra channel, the same for every batch (each batch frames the same inputs):
    estimated once per job, its map shown once among the result's extra images."""
    bundle = plan.bundle
    if bundle.unet_in_channels != bundle.latent_channels + 1:
        return None
    from modules.processing import depth

    factor = bundle.vae_scale_factor
    latent_hw = (plan.job.height // factor, plan.job.width // factor)
    return depth.depth_cond_for(runtime, plan, [p.image for p in prepared], latent_hw)


def sample_batch(
    runtime: Runtime,
    plan: JobPlan,
    batch: Batch,
    prepared: list[PreparedImage],
    depth_cond: torch.Tensor | None = None,
) -> torch.Tensor:
    job, bundle, settings = plan.job, plan.bundle, plan.settings
    generator = torch.Generator().manual_seed(batch.seeds[0])
    images = [p.image for p in prepared]
    if job.resize_mode == ResizeMode.LATENT_UPSCALE:
        init_latent = encode_and_upscale(bundle, job, generator)
    else:
        init_latent = vae.encode(bundle, images, generator)
    latent_hw = tuple(init_latent.shape[-2:])
    mask = latent_mask(prepared, latent_hw, bool(settings["mask_round"]))
    if mask is not None:
        mask = mask.to(init_latent.device)
    if mask is not None and job.inpainting_fill in (MaskedContent.LATENT_NOISE, MaskedContent.LATENT_NOTHING):
        noise_fill = job.inpainting_fill == MaskedContent.LATENT_NOISE
        fill = torch.randn(init_latent.shape, generator=generator) if noise_fill else 0
        init_latent = init_latent * (1 - mask) + torch.as_tensor(fill).to(init_latent) * mask
    conds, unconds = plan.conditioning.batch(batch.prompts, batch.negative_prompts)
    if strength(job) == 0:
        # Strength 0 means "unchanged": return the input through encode/decode without any sampling.
        return init_latent
    batch_input = sampling_pass.BatchInput(
        conds=conds,
        unconds=unconds,
        shape=tuple(init_latent.shape[1:]),
        seeds=batch.seeds,
        subseeds=batch.subseeds,
        init_latent=init_latent,
        image_cond=depth_cond
        if depth_cond is not None
        else make_image_cond(plan, prepared, latent_hw, generator),
        latent_mask=mask,
    )
    return sampling_pass.run_pass(runtime, plan, plan.first_pass, batch_input)


def encode_and_upscale(bundle: ModelBundle, job: GenerationJob, generator: torch.Generator) -> torch.Tensor:
    """Resize mode 3: encode at the input's own size, then upscale the latents bilinearly."""
    factor = bundle.vae_scale_factor
    latents = []
    for image in job.init_images:
        w, h = (max(factor, image.width // factor * factor), max(factor, image.height // factor * factor))
        encoded = vae.encode(bundle, [image.convert("RGB").resize((w, h), imageops.LANCZOS)], generator)
        latents.append(
            F.interpolate(encoded, size=(job.height // factor, job.width // factor), mode="bilinear")
        )
    stacked = torch.cat(latents)
    return stacked.expand(job.batch_size, *stacked.shape[1:]) if len(latents) == 1 else stacked


def latent_mask(
    prepared: list[PreparedImage], latent_hw: tuple[int, int], round_mask: bool
) -> torch.Tensor | None:
    if prepared[0].mask is None:
        return None
    h, w = latent_hw
    masks = [imageops.latent_mask(p.latent_mask, w, h, round_mask) for p in prepared]
    return torch.from_numpy(np.stack(masks)).unsqueeze(1)


def make_image_cond(
    plan: JobPlan,
    prepared: list[PreparedImage],
    latent_hw: tuple[int, int],
    generator: torch.Generator,
) -> torch.Tensor | None:
    bundle = plan.bundle
    if not image_cond.needs_image_cond(bundle):
        return None
    pixel_mask = None
    if prepared[0].mask is not None:
        arrays = [np.asarray(p.mask, dtype=np.float32) / 255 for p in prepared]
        pixel_mask = torch.from_numpy(np.stack(arrays)).unsqueeze(1)
    return image_cond.inpainting_cond(
        bundle,
        [p.image for p in prepared],
        pixel_mask,
        latent_hw,
        mask_weight=float(plan.settings["inpainting_mask_weight"]),
        generator=generator,
    )
