"""Tiny random-weight models in the SD 1.x architecture, for tests and as a fallback default model.

Same seed -> same weights -> same bytes on disk: every parameter is drawn from one seeded generator in
a fixed order, independent of torch's global RNG state.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

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
