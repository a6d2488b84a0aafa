"""Tiny models of every family, built once per session, and helpers to write them to disk."""

from __future__ import annotations

import pytest
import torch

from modules.models.bundle import Arch, ModelBundle
from modules.models.tiny import build_tiny

# (arch, unet input channels, prediction type): SD1, SD1 inpainting, SD2, SD2-v, SD2 depth, SDXL
VARIANTS = [
    (Arch.SD1, 4, "epsilon"),
    (Arch.SD1, 9, "epsilon"),
    (Arch.SD2, 4, "epsilon"),
    (Arch.SD2, 4, "v_prediction"),
    (Arch.SD2, 5, "epsilon"),
    (Arch.SDXL, 4, "epsilon"),
]
VARIANT_IDS = ["sd1", "sd1-inpaint", "sd2", "sd2-v", "sd2-depth", "sdxl"]

_built: dict[tuple, ModelBundle] = {}


def tiny(arch: Arch, channels: int = 4, prediction: str = "epsilon", seed: int = 3) -> ModelBundle:
    """A cached tiny bundle; tests must not modify it."""
    key = (arch, channels, prediction, seed)
    if key not in _built:
        _built[key] = build_tiny(arch, seed, channels, prediction)
    return _built[key]


@pytest.fixture(params=VARIANTS, ids=VARIANT_IDS)
def variant(request) -> ModelBundle:
    return tiny(*request.param)


def unet_output(bundle: ModelBundle, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, bundle.unet_in_channels, 8, 8, generator=generator)
    context = torch.randn(1, 77, bundle.unet.config.cross_attention_dim, generator=generator)
    extra = {}
    if bundle.unet.config.addition_embed_type == "text_time":
        pooled = (
            bundle.unet.config.projection_class_embeddings_input_dim
            - 6 * bundle.unet.config.addition_time_embed_dim
        )
        extra["added_cond_kwargs"] = {
            "text_embeds": torch.randn(1, pooled, generator=generator),
            "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]]),
        }
    with torch.no_grad():
        return bundle.unet(x, torch.tensor([500]), encoder_hidden_states=context, **extra).sample


def vae_output(bundle: ModelBundle) -> torch.Tensor:
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return bundle.vae.decode(latents).sample


def text_outputs(bundle: ModelBundle) -> list[torch.Tensor]:
    outs = []
    for tokenizer, encoder in zip(bundle.tokenizers, bundle.text_encoders, strict=True):
        ids = tokenizer(["a red cube"], padding="max_length", max_length=77, return_tensors="pt").input_ids
        with torch.no_grad():
            result = encoder(ids, output_hidden_states=True)
        outs += [result.hidden_states[-2], result.last_hidden_state]
        if hasattr(result, "text_embeds"):
            outs.append(result.text_embeds)
    return outs
