"""Tiny random-weight models in the SD 1.x, SD 2.x and SDXL architectures, for tests and as a fallback.

Each tiny model has the structure of its family (SD2: OpenCLIP-style text encoder with gelu and "!"
padding, linear attention projections; SDXL: two text encoders, pooled text + time ids through a
"text_time" added embedding, no attention at the first level) with tiny widths, so the loaders, converters
and pipelines exercise the same code paths as with real checkpoints.

Same seed -> same weights -> same bytes on disk: every parameter is drawn from one seeded generator in
a fixed order, independent of torch's global RNG state.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from modules import paths
from modules.models.bundle import Arch, ModelBundle, scaled_linear_alphas_cumprod

TEXT_DIM = 32


def tiny_unet_config(in_channels: int = 4, cross_attention_dim: int = TEXT_DIM) -> dict:
    return {
        "sample_size": 8,
        "in_channels": in_channels,
        "out_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": [32, 64],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": 4,
        "norm_num_groups": 8,
    }


def tiny_vae_config() -> dict:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 1,
        "block_out_channels": [16, 32, 32, 32],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "norm_num_groups": 8,
        "sample_size": 64,
        "scaling_factor": 0.18215,
    }


def tiny_sd2_unet_config(in_channels: int = 4) -> dict:
    return {**tiny_unet_config(in_channels=in_channels), "use_linear_projection": True}


def tiny_sdxl_unet_config() -> dict:
    """SDXL's layout: plain first level, two transformer layers at the attention level, text_time embedding."""
    time_embed_dim = 8
    return {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "layers_per_block": 2,
        "block_out_channels": [32, 64],
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "transformer_layers_per_block": [1, 2],
        "cross_attention_dim": 2 * TEXT_DIM,
        "attention_head_dim": [2, 4],
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": time_embed_dim,
        # SDXL's added embedding input: pooled text (projection of encoder 2) + 6 time ids embedded each.
        "projection_class_embeddings_input_dim": TEXT_DIM + 6 * time_embed_dim,
        "norm_num_groups": 8,
    }


def tiny_text_config() -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=TEXT_DIM,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=TEXT_DIM,
        hidden_act="quick_gelu",
    )


def tiny_openclip_config() -> CLIPTextConfig:
    """OpenCLIP-style: gelu instead of quick_gelu, and "!" (token id 0) as the padding token."""
    config = tiny_text_config()
    config.hidden_act = "gelu"
    config.pad_token_id = 0
    return config


def reseed_parameters(module: torch.nn.Module, seed: int, std: float = 0.02) -> None:
    """Overwrite every parameter from one seeded generator, in the module's fixed parameter order.

    Norm weights become 1 and biases small so the random network stays numerically tame.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias"):
                param.copy_(0.01 * noise)
            else:
                fan_in = param[0].numel() if param.dim() > 1 else param.numel()
                param.copy_(noise * min(std * 10, fan_in**-0.5))


def build_tiny_bundle(seed: int = 0, unet_in_channels: int = 4) -> ModelBundle:
    """A complete SD1-architecture bundle with tiny random weights (about 2 M parameters)."""
    unet = UNet2DConditionModel(**tiny_unet_config(in_channels=unet_in_channels))
    vae = AutoencoderKL(**tiny_vae_config())
    text_encoder = CLIPTextModel(tiny_text_config())
    for offset, module in enumerate((unet, vae, text_encoder)):
        reseed_parameters(module, seed * 1000 + offset)
        module.eval().requires_grad_(False)
    tokenizer = CLIPTokenizer.from_pretrained(paths.CLIP_L_TOKENIZER)
    return ModelBundle(
        unet=unet,
        vae=vae,
        text_encoders=[text_encoder],
        tokenizers=[tokenizer],
        arch=Arch.SD1,
        prediction_type="epsilon",
        alphas_cumprod=scaled_linear_alphas_cumprod(),
        name=f"tiny-sd1-seed{seed}",
    )


def _finish(modules: list[torch.nn.Module], seed: int) -> None:
    for offset, module in enumerate(modules):
        reseed_parameters(module, seed * 1000 + offset)
        module.eval().requires_grad_(False)


def build_tiny_sd2_bundle(
    seed: int = 0, unet_in_channels: int = 4, prediction_type: str = "epsilon"
) -> ModelBundle:
    """A tiny SD2-architecture bundle: 5 input channels make a depth model, ``"v_prediction"`` an SD2-v."""
    unet = UNet2DConditionModel(**tiny_sd2_unet_config(in_channels=unet_in_channels))
    vae = AutoencoderKL(**tiny_vae_config())
    text_encoder = CLIPTextModel(tiny_openclip_config())
    _finish([unet, vae, text_encoder], seed)
    return ModelBundle(
        unet=unet,
        vae=vae,
        text_encoders=[text_encoder],
        tokenizers=[CLIPTokenizer.from_pretrained(paths.OPEN_CLIP_TOKENIZER)],
        arch=Arch.SD2,
        prediction_type=prediction_type,
        alphas_cumprod=scaled_linear_alphas_cumprod(),
        name=f"tiny-sd2-seed{seed}",
    )


def build_tiny_sdxl_bundle(seed: int = 0) -> ModelBundle:
    """A tiny SDXL-architecture bundle: CLIP-L-style encoder, then an OpenCLIP-style one with projection."""
    unet = UNet2DConditionModel(**tiny_sdxl_unet_config())
    # SDXL's VAE differs from SD1's only in its latent scaling factor, and overflows in fp16.
    vae = AutoencoderKL(**{**tiny_vae_config(), "scaling_factor": 0.13025, "force_upcast": True})
    text_encoders = [CLIPTextModel(tiny_text_config()), CLIPTextModelWithProjection(tiny_openclip_config())]
    _finish([unet, vae, *text_encoders], seed)
    return ModelBundle(
        unet=unet,
        vae=vae,
        text_encoders=text_encoders,
        tokenizers=[
            CLIPTokenizer.from_pretrained(paths.CLIP_L_TOKENIZER),
            CLIPTokenizer.from_pretrained(paths.OPEN_CLIP_TOKENIZER),
        ],
        arch=Arch.SDXL,
        prediction_type="epsilon",
        alphas_cumprod=scaled_linear_alphas_cumprod(),
        name=f"tiny-sdxl-seed{seed}",
    )


def build_tiny(
    arch: Arch, seed: int = 0, unet_in_channels: int = 4, prediction_type: str = "epsilon"
) -> ModelBundle:
    """Any tiny model by family: SD1 (4/9 channels), SD2 (4/5/9 channels, epsilon or v), SDXL."""
    if arch is Arch.SD1:
        return build_tiny_bundle(seed, unet_in_channels)
    if arch is Arch.SD2:
        return build_tiny_sd2_bundle(seed, unet_in_channels, prediction_type)
    return build_tiny_sdxl_bundle(seed)
