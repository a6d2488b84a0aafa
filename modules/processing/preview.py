"""Live previews while sampling, by A1111's methods ("show_progress_type"), and fitting a model's cheap
latent-to-RGB map.

"Full" decodes the current denoised estimate with the VAE (as slow as the final decode); "Approx cheap"
multiplies the latent by a 4x3 map (``modules.models.latent_rgb``: the model's own, else its family's),
one pixel per latent cell, then scales it up to the output's size by nearest neighbour, so a preview
sits where the result will appear at the result's size.
"""

from __future__ import annotations

import torch
from PIL import Image

from modules.models.bundle import ModelBundle
from modules.models.latent_rgb import FAMILY, LatentRgb
from modules.options import PREVIEW_FULL
from modules.processing.vae import decode_pixels, encode_pixels, images_to_tensor, tensor_to_images


def latent_map(bundle: ModelBundle) -> LatentRgb:
    """The bundle's own map where its file carries one, else the family's."""
    return getattr(bundle, "latent_rgb", None) or FAMILY[bundle.arch]


def approximate(latent: torch.Tensor, mapping: LatentRgb) -> Image.Image:
    """One latent [C, h, w] -> an h x w RGB image through the linear map, without the VAE."""
    factors = torch.tensor(mapping.factors, dtype=torch.float32)
    bias = torch.tensor(mapping.bias, dtype=torch.float32)
    rgb = torch.einsum("chw,cr->rhw", latent.float().cpu(), factors) + bias[:, None, None]
    return tensor_to_images(rgb.unsqueeze(0))[0]


def preview_image(
    bundle: ModelBundle, latent: torch.Tensor, method: str, size: tuple[int, int]
) -> Image.Image:
    """The preview of one latent [C, h, w] by ``method``, at ``size`` (the output's width, height)."""
    if method == PREVIEW_FULL:
        image = tensor_to_images(decode_pixels(bundle, latent.unsqueeze(0)))[0]
    else:
        image = approximate(latent, latent_map(bundle))
    return image if image.size == size else image.resize(size, Image.Resampling.NEAREST)


@torch.no_grad()
def fit(bundle: ModelBundle, images: list[Image.Image], seed: int = 0) -> LatentRgb:
    """The least-squares map (with bias) from the bundle's latents of ``images`` to their colours,
    averaged over each latent cell: what "Approx cheap" should use for this model's VAE."""
    pixels = images_to_tensor(images)
    latents = torch.cat(
        [
            encode_pixels(bundle, pixels[i : i + 32], torch.Generator().manual_seed(seed + i)).float().cpu()
            for i in range(0, len(pixels), 32)
        ]
    )
    factor = pixels.shape[-1] // latents.shape[-1]
    target = torch.nn.functional.avg_pool2d(pixels, factor)  # [N, 3, h, w], in [-1, 1]
    x = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).double()
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    y = target.permute(0, 2, 3, 1).reshape(-1, 3).double()
    solution = torch.linalg.lstsq(x, y).solution  # [C + 1, 3]
    rows = tuple(tuple(round(float(v), 4) for v in row) for row in solution[:-1])
    return LatentRgb(rows, tuple(round(float(v), 4) for v in solution[-1]))  # type: ignore[arg-type]
