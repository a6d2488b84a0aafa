"""Latents <-> pixels: VAE decode/encode (live previews are modules/processing/preview.py)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

from modules.models.bundle import ModelBundle
from modules.models.vae import decode_dtype
from modules.sampling.denoiser import check_finite

log = logging.getLogger(__name__)


def tensor_to_images(pixels: torch.Tensor) -> list[Image.Image]:
    """[-1, 1] float images [B, 3, H, W] -> 8-bit RGB PIL images."""
    array = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [Image.fromarray(a.permute(1, 2, 0).cpu().numpy()) for a in array]


def images_to_tensor(images: list[Image.Image]) -> torch.Tensor:
    arrays = [np.asarray(img.convert("RGB"), dtype=np.float32) / 127.5 - 1.0 for img in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def decode(bundle: ModelBundle, latents: torch.Tensor, no_half_vae: bool = False) -> list[Image.Image]:
    """Latents -> 8-bit images; the pixels cross to the host only here, once decoded."""
    return tensor_to_images(decode_pixels(bundle, latents, no_half_vae))


@torch.no_grad()
def decode_pixels(bundle: ModelBundle, latents: torch.Tensor, no_half_vae: bool = False) -> torch.Tensor:
    """Latents -> [-1, 1] pixels [B, 3, H, W] on the bundle's device."""
    scaled = latents / bundle.vae_scaling_factor
    shift = getattr(bundle.vae.config, "shift_factor", None)
    if shift:
        scaled = scaled + shift
    dtype = decode_dtype(bundle, no_half_vae)
    pixels = _decode_in(bundle, scaled, dtype)
    if dtype == torch.float16 and not pixels.is_meta and not torch.isfinite(pixels).all():
        # A1111 compatibility ("Automatically revert VAE to 32-bit floats", on by default): an fp16
        # decode that overflows is done again in fp32 (here for this decode only, not for the session).
        log.warning("The VAE produced NaNs in fp16; decoded again in fp32 (--no-half-vae avoids the retry)")
        dtype = torch.float32
        pixels = _decode_in(bundle, scaled, dtype)
    check_finite(pixels, "VAE", dtype)
    return pixels


def _decode_in(bundle: ModelBundle, scaled: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    vae = bundle.vae
    stored = vae.dtype
    if dtype != stored:
        vae.to(dtype)  # SDXL's VAE overflows in fp16: decode in fp32, then give the memory back
    try:
        return vae.decode(scaled.to(bundle.device, dtype)).sample
    finally:
        if dtype != stored:
            vae.to(stored)


@torch.no_grad()
def encode_pixels(
    bundle: ModelBundle, pixels: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """[-1, 1] pixels [B, 3, H, W] -> scaled latents, sampling the VAE posterior with ``generator``.

    A1111 samples the posterior too (from the global RNG); a per-job generator keeps it reproducible.
    """
    vae = bundle.vae
    posterior = vae.encode(pixels.to(bundle.device, vae.dtype)).latent_dist
    noise = torch.randn(posterior.mean.shape, generator=generator, dtype=torch.float32)
    latents = posterior.mean.float() + posterior.std.float() * noise.to(posterior.mean.device)
    check_finite(latents, "VAE encoder", vae.dtype)
    shift = getattr(vae.config, "shift_factor", None)
    if shift:
        latents = latents - shift
    return latents * bundle.vae_scaling_factor


def encode(
    bundle: ModelBundle, images: list[Image.Image], generator: torch.Generator | None = None
) -> torch.Tensor:
    return encode_pixels(bundle, images_to_tensor(images), generator)
