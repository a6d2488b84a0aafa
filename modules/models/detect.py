"""Architecture detection and diffusers configs derived from a checkpoint's keys and shapes.

The family (SD1 / SD2 / SDXL) comes from which text encoder keys a file has; sizes (channels, levels,
layers per block, transformer depth, context width, text encoder width and depth) are read from tensor
shapes, so non-standard and tiny models load through the same path as published ones. What shapes cannot
tell (attention head counts, norm group counts, activation, token ids) comes from the family's skeleton in
configs/, unless the file's metadata key ``sdwebui_config`` (written by this project) overrides it.

v-prediction (SD2 only), in order: a ``<checkpoint>.yaml`` beside the file, as in A1111 (``parameterization:
"v"`` -> v, any other yaml -> epsilon); then ``sdwebui_config["prediction_type"]``; then A1111's probe:
run the UNet once on a constant input at t=999 and call it v-prediction when the mean of (output - input)
is below -1 (an epsilon model returns about the noise, i.e. the input; a v model returns about -x0).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from modules import paths
from modules.models.bundle import Arch
from modules.models.convert import SD1_TEXT_PREFIX, SD2_TEXT_PREFIX, SDXL_TEXT_PREFIXES, UNET_PREFIX

METADATA_KEY = "sdwebui_config"

# Hyperparameters that shapes cannot reveal; written to metadata when they differ from the skeleton.
UNET_HIDDEN_FIELDS = ("attention_head_dim", "norm_num_groups", "norm_eps", "sample_size", "upcast_attention")
VAE_HIDDEN_FIELDS = ("norm_num_groups", "scaling_factor", "sample_size", "force_upcast")
TEXT_HIDDEN_FIELDS = (
    "num_attention_heads",
    "hidden_act",
    "layer_norm_eps",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)


class DetectionError(ValueError):
    """The file is not a checkpoint of a supported Stable Diffusion family."""


@dataclass(frozen=True)
class Detected:
    arch: Arch
    unet_in_channels: int

    @property
    def variant(self) -> str:
        return {9: "inpainting", 5: "depth"}.get(self.unet_in_channels, "")


def metadata_hints(metadata: Mapping[str, str]) -> dict:
    """The ``sdwebui_config`` JSON object of a file's metadata; {} when absent or unreadable."""
    try:
        value = json.loads(metadata.get(METADATA_KEY, "{}"))
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def top_level_prefixes(keys: Iterable[str], limit: int = 8) -> str:
    found = sorted({k.split(".", 1)[0] for k in keys})
    return ", ".join(found[:limit]) + (", ..." if len(found) > limit else "") or "(no tensors)"


def detect_arch(keys: Iterable[str]) -> Arch:
    """SD1 / SD2 / SDXL from an original-layout checkpoint's key names; DetectionError otherwise."""
    keys = set(keys)
    if not any(k.startswith(UNET_PREFIX) for k in keys):
        raise DetectionError(
            f"no UNet keys ({UNET_PREFIX}*) found; top-level prefixes: {top_level_prefixes(keys)}"
        )
    has = {
        p: any(k.startswith(p) for k in keys) for p in (SD1_TEXT_PREFIX, SD2_TEXT_PREFIX, *SDXL_TEXT_PREFIXES)
    }
    if has[SDXL_TEXT_PREFIXES[0]] and has[SDXL_TEXT_PREFIXES[1]]:
        return Arch.SDXL
    if has[SD2_TEXT_PREFIX]:
        return Arch.SD2
    if has[SD1_TEXT_PREFIX]:
        return Arch.SD1
    if any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        raise DetectionError("SDXL refiner checkpoints (one OpenCLIP-bigG text encoder) are not supported")
    raise DetectionError(
        "UNet found but no text encoder keys (cond_stage_model.transformer.*, cond_stage_model.model.* or "
        f"conditioner.embedders.*); top-level prefixes: {top_level_prefixes(keys)}"
    )


def skeleton_name(arch: Arch, unet_in_channels: int = 4, prediction_type: str = "epsilon") -> str:
    """The configs/ folder whose defaults fit a model."""
    if arch is Arch.SDXL:
        return "sdxl"
    if arch is Arch.SD1:
        return "sd1-inpainting" if unet_in_channels == 9 else "sd1"
    if unet_in_channels == 5:
        return "sd2-depth"
    return "sd2-v" if prediction_type == "v_prediction" else "sd2"


def load_skeleton(name: str, component: str) -> dict:
    folder = paths.CONFIGS / name / component
    file = folder / ("scheduler_config.json" if component == "scheduler" else "config.json")
    return json.loads(file.read_text())


# --- configs from diffusers-layout state dicts ------------------------------------------------------------


def _indices(keys: Iterable[str], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in keys if (m := re.match(pattern, k))})


def derive_unet_config(
    unet: Mapping[str, torch.Tensor], skeleton: dict, overrides: Mapping, pooled_dim: int | None = None
) -> dict:
    """A UNet2DConditionModel config for these weights (diffusers layout)."""
    keys = list(unet)
    levels = _indices(keys, r"down_blocks\.(\d+)\.")
    channels = [unet[f"down_blocks.{i}.resnets.0.conv1.weight"].shape[0] for i in levels]
    attention = [bool(_indices(keys, rf"down_blocks\.{i}\.attentions\.(\d+)\.")) for i in levels]
    depth = [
        len(_indices(keys, rf"down_blocks\.{i}\.attentions\.0\.transformer_blocks\.(\d+)\.")) or 1
        for i in levels
    ]
    proj_in = next(v for k, v in unet.items() if k.endswith("proj_in.weight"))
    config = {
        **skeleton,
        "in_channels": unet["conv_in.weight"].shape[1],
        "out_channels": unet["conv_out.weight"].shape[0],
        "block_out_channels": channels,
        "layers_per_block": len(_indices(keys, r"down_blocks\.0\.resnets\.(\d+)\.")),
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        "transformer_layers_per_block": depth if len(set(depth)) > 1 else depth[0],
        "cross_attention_dim": next(v for k, v in unet.items() if k.endswith("attn2.to_k.weight")).shape[1],
        "use_linear_projection": proj_in.dim() == 2,
        "attention_head_dim": _head_dims(skeleton["attention_head_dim"], channels),
    }
    if "add_embedding.linear_1.weight" in unet:
        adm_in = unet["add_embedding.linear_1.weight"].shape[1]
        config["projection_class_embeddings_input_dim"] = adm_in
        # SDXL's added embedding is the pooled text vector plus six embedded time ids (sizes, crop, target).
        config["addition_time_embed_dim"] = (adm_in - (pooled_dim or 0)) // 6
    return {**config, **overrides}


def _head_dims(skeleton_value: int | list[int], channels: list[int]) -> int | list[int]:
    # SD1's "attention_head_dim" is really a head count (8 everywhere, a diffusers misnomer); SD2 and SDXL
    # use 64-channel heads, so their head count grows with the level's width.
    if isinstance(skeleton_value, int):
        return skeleton_value
    return [max(1, c // 64) for c in channels]


def derive_vae_config(vae: Mapping[str, torch.Tensor], skeleton: dict, overrides: Mapping) -> dict:
    keys = list(vae)
    levels = _indices(keys, r"encoder\.down_blocks\.(\d+)\.")
    return {
        **skeleton,
        "in_channels": vae["encoder.conv_in.weight"].shape[1],
        "out_channels": vae["decoder.conv_out.weight"].shape[0],
        "latent_channels": vae["encoder.conv_out.weight"].shape[0] // 2,  # mean and log-variance
        "block_out_channels": [
            vae[f"encoder.down_blocks.{i}.resnets.0.conv1.weight"].shape[0] for i in levels
        ],
        "layers_per_block": len(_indices(keys, r"encoder\.down_blocks\.0\.resnets\.(\d+)\.")),
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
        **overrides,
    }


def derive_text_config(text: Mapping[str, torch.Tensor], skeleton: dict, overrides: Mapping) -> dict:
    """A CLIPTextConfig dict for HF-layout text encoder weights."""
    token = text["text_model.embeddings.token_embedding.weight"]
    config = {
        **skeleton,
        "vocab_size": token.shape[0],
        "hidden_size": token.shape[1],
        "max_position_embeddings": text["text_model.embeddings.position_embedding.weight"].shape[0],
        "intermediate_size": text["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
        "num_hidden_layers": len(_indices(text, r"text_model\.encoder\.layers\.(\d+)\.")),
        # Every published CLIP text tower uses 64-channel heads (CLIP-L 12, OpenCLIP-H 16, bigG 20).
        "num_attention_heads": max(1, token.shape[1] // 64),
    }
    if "text_projection.weight" in text:
        config["projection_dim"] = text["text_projection.weight"].shape[0]
    return {**config, **overrides}


def hidden_overrides(config: Mapping, skeleton: Mapping, fields: Iterable[str]) -> dict:
    """The non-derivable fields of ``config`` that differ from ``skeleton`` (what metadata must carry)."""
    return {f: config[f] for f in fields if f in config and config[f] != skeleton.get(f)}


# --- prediction type --------------------------------------------------------------------------------------

_YAML_V = re.compile(r"""^\s*parameterization:\s*["']?v["']?\s*$""", re.MULTILINE)


def yaml_beside(checkpoint: Path) -> Path | None:
    candidate = Path(checkpoint).with_suffix(".yaml")
    return candidate if candidate.is_file() else None


def prediction_from_yaml(checkpoint: Path) -> str | None:
    """A1111 reads the LDM config yaml beside a checkpoint; we only need its parameterization line."""
    yaml = yaml_beside(checkpoint)
    if yaml is None:
        return None
    return "v_prediction" if _YAML_V.search(yaml.read_text(errors="replace")) else "epsilon"


@torch.no_grad()
def probe_v_prediction(unet: torch.nn.Module) -> bool:
    """A1111's test for SD2 checkpoints without a yaml: constant input at t=999, mean(out - x) < -1."""
    param = next(unet.parameters())
    x = torch.full((1, unet.config.in_channels, 8, 8), 0.5, device=param.device, dtype=param.dtype)
    context = torch.full((1, 2, unet.config.cross_attention_dim), 0.5, device=param.device, dtype=param.dtype)
    timestep = torch.tensor([999], device=param.device)
    out = unet(x, timestep, encoder_hidden_states=context).sample
    return (out.float() - x.float()).mean().item() < -1
