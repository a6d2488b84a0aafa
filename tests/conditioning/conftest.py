"""Tiny text-encoder-only bundles for SD1, SD2 and SDXL (no UNet/VAE: conditioning never touches them)."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from modules import paths
from modules.models.bundle import Arch, ModelBundle, scaled_linear_alphas_cumprod
from modules.models.tiny import reseed_parameters


def text_config(
    hidden: int, layers: int = 4, act: str = "quick_gelu", projection: int = 32
) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=projection,
        hidden_act=act,
        bos_token_id=49406,
        eos_token_id=49407,
    )


def frozen(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    reseed_parameters(model, seed)
    return model.eval().requires_grad_(False)


def text_bundle(arch: Arch, encoders: list, tokenizers: list) -> ModelBundle:
    return ModelBundle(
        unet=None,
        vae=None,
        text_encoders=encoders,
        tokenizers=tokenizers,
        arch=arch,
        prediction_type="epsilon",
        alphas_cumprod=scaled_linear_alphas_cumprod(),
        name=f"tiny-{arch}",
    )


@pytest.fixture(scope="session")
def clip_tokenizer() -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(paths.CLIP_L_TOKENIZER)


@pytest.fixture(scope="session")
def open_clip_tokenizer() -> CLIPTokenizer:
    return CLIPTokenizer.from_pretrained(paths.OPEN_CLIP_TOKENIZER)


@pytest.fixture(scope="session")
def sd1(clip_tokenizer) -> ModelBundle:
    model = frozen(CLIPTextModel(text_config(32)), seed=1)
    return text_bundle(Arch.SD1, [model], [clip_tokenizer])


@pytest.fixture(scope="session")
def sd2(open_clip_tokenizer) -> ModelBundle:
    model = frozen(CLIPTextModel(text_config(32, act="gelu")), seed=2)
    return text_bundle(Arch.SD2, [model], [open_clip_tokenizer])


@pytest.fixture(scope="session")
def sd2_full_tower(open_clip_tokenizer) -> ModelBundle:
    """An SD2 encoder with all 24 OpenCLIP-H layers (as in the original checkpoint), kept tiny in width."""
    model = frozen(CLIPTextModel(text_config(16, layers=24, act="gelu")), seed=3)
    return text_bundle(Arch.SD2, [model], [open_clip_tokenizer])


@pytest.fixture(scope="session")
def sdxl(clip_tokenizer, open_clip_tokenizer) -> ModelBundle:
    clip_l = frozen(CLIPTextModel(text_config(32)), seed=4)
    clip_g = frozen(CLIPTextModelWithProjection(text_config(48, act="gelu", projection=40)), seed=5)
    return text_bundle(Arch.SDXL, [clip_l, clip_g], [clip_tokenizer, open_clip_tokenizer])
