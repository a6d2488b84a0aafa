"""The loaded model as one explicit object passed along the pipeline (no global "current model")."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch


class Arch(StrEnum):
    """Model families the project loads; the value is what the UI and logs show."""

    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"


@dataclass
class ModelBundle:
    """Everything one checkpoint provides, already on its device and dtype.

    ``text_encoders``/``tokenizers`` hold one entry for SD1/SD2 and two for SDXL (CLIP-L, then OpenCLIP-bigG).
    ``alphas_cumprod`` is the training noise schedule the sigmas are derived from.
    ``unet_in_channels`` is 4 for plain models, 9 for inpainting and 5 for depth models.
    """

    unet: Any
    vae: Any
    text_encoders: list[Any]
    tokenizers: list[Any]
    arch: Arch
    prediction_type: str  # "epsilon" or "v_prediction"
    alphas_cumprod: torch.Tensor
    name: str = "model"
    path: Path | None = None
    sha256: str | None = None
    vae_name: str | None = None
    vae_sha256: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32  # the weights' dtype (text encoders and UNet)
    compute_dtype: torch.dtype | None = None  # the UNet's maths when it differs (--upcast-sampling)
    offload: Any = None  # the medvram/lowvram group moving parts to ``device`` while they run
    latent_rgb: Any = None  # the file's own latent_rgb.LatentRgb for "Approx cheap" previews, if any

    @property
    def unet_compute_dtype(self) -> torch.dtype:
        return self.compute_dtype or self.dtype

    @property
    def unet_in_channels(self) -> int:
        return int(self.unet.config.in_channels)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def vae_scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def short_hash(self) -> str | None:
        """The 10-character hash users see ("Model hash: 6ce0161689")."""
        return self.sha256[:10] if self.sha256 else None


def scaled_linear_alphas_cumprod(
    num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
) -> torch.Tensor:
    """The training noise schedule of every SD 1.x/2.x/XL model ("scaled_linear" betas), in float64."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)
