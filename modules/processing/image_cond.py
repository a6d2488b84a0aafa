"""Extra UNet input channels: the masked-image conditioning of 9-channel inpainting models and the depth
map of 5-channel depth models. Plain 4-channel models get none."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from modules.models.bundle import ModelBundle
from modules.processing import vae


def needs_image_cond(bundle: ModelBundle) -> bool:
    return bundle.unet_in_channels != bundle.latent_channels


def uses_inpainting_cond(bundle: ModelBundle) -> bool:
    """A 9-channel inpainting model: the mask and the masked image's latent are extra inputs."""
    return bundle.unet_in_channels == bundle.latent_channels + 5


def inpainting_cond(
    bundle: ModelBundle,
    images: list[Image.Image],
    mask: torch.Tensor | None,
    latent_hw: tuple[int, int],
    mask_weight: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """[B, 5, h, w]: the latent-size mask, then the VAE latent of the image with the masked area blanked.

    ``mask`` is [B or 1, 1, H, W] in pixel space (1 = repaint) or None (whole image repaints, as for txt2img
    and plain img2img on an inpainting model). A1111's "inpainting conditioning mask strength" blends
    between the blanked (1.0) and the untouched (0.0) image.
    """
    return pixels_cond(bundle, vae.images_to_tensor(images), mask, latent_hw, mask_weight, generator)


def pixels_cond(
    bundle: ModelBundle,
    pixels: torch.Tensor,
    mask: torch.Tensor | None,
    latent_hw: tuple[int, int],
    mask_weight: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``inpainting_cond`` of pixels [B, 3, H, W] as the VAE takes them (-1..1)."""
    if mask is None:
        mask = torch.ones(1, 1, *pixels.shape[-2:])
    mask = torch.round(mask.float()).to(pixels)
    blanked = torch.lerp(pixels, pixels * (1.0 - mask), mask_weight)
    latents = vae.encode_pixels(bundle, blanked, generator)
    small_mask = F.interpolate(mask, size=latent_hw).expand(latents.shape[0], 1, *latent_hw)
    return torch.cat([small_mask.to(latents), latents], dim=1)


def txt2img_cond(bundle: ModelBundle, count: int, latent_hw: tuple[int, int]) -> torch.Tensor | None:
    """What a txt2img (or hires) pass feeds the extra channels: for an inpainting model, A1111's blank
    conditioning (a mid-grey image, exactly 0 to the VAE, that the mask of ones marks for repainting)."""
    if not needs_image_cond(bundle):
        return None
    if bundle.unet_in_channels != bundle.latent_channels + 5:
        raise ValueError(
            "This is a depth-to-image checkpoint: it needs an input image, so use img2img with it"
        )
    factor = bundle.vae_scale_factor
    grey = torch.zeros(count, 3, latent_hw[0] * factor, latent_hw[1] * factor)
    return pixels_cond(bundle, grey, None, latent_hw, generator=torch.Generator().manual_seed(0))


def depth_cond(depth: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
    """[B, 1, h, w]: a depth map resized to latent size and normalised to -1..1 per image."""
    depth = F.interpolate(depth.float(), size=latent_hw, mode="bicubic", align_corners=False)
    low = depth.amin(dim=(1, 2, 3), keepdim=True)
    high = depth.amax(dim=(1, 2, 3), keepdim=True)
    return 2.0 * (depth - low) / (high - low).clamp(min=1e-8) - 1.0
