"""Key mapping between original single-file checkpoints (CompVis/LDM/SGM layout) and diffusers/transformers.

Pure functions over state dicts: no models are built and no tensor values change, so a conversion there
and back is bit-exact. Shapes change only where the two layouts store the same numbers differently (VAE
attention 1x1 convs vs linears, OpenCLIP's fused q/k/v and transposed text projection); those come back
as views of the input where possible, so converting costs no extra memory.

Block counts are read from the keys themselves (layers per block, number of levels), so the tiny test
models and real SD1/SD2/SDXL checkpoints go through the same code.

Text encoders use the Hugging Face file layout ("text_model.*" plus an optional "text_projection.weight"),
which is what a diffusers folder's text_encoder/model.safetensors holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from modules.models.bundle import Arch

Tensor = torch.Tensor
StateDict = dict[str, Tensor]

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_TEXT_PREFIX = "cond_stage_model.transformer."
SD2_TEXT_PREFIX = "cond_stage_model.model."
SDXL_TEXT_PREFIXES = ("conditioner.embedders.0.transformer.", "conditioner.embedders.1.model.")


@dataclass
class Components:
    """One checkpoint's weights per network, in diffusers/transformers layout."""

    unet: StateDict
    vae: StateDict
    text_encoders: list[StateDict] = field(default_factory=list)


def text_prefixes(arch: Arch) -> tuple[tuple[str, str], ...]:
    """(prefix, style) of each text encoder in an original checkpoint; style is "clip" or "openclip"."""
    if arch is Arch.SD1:
        return ((SD1_TEXT_PREFIX, "clip"),)
    if arch is Arch.SD2:
        return ((SD2_TEXT_PREFIX, "openclip"),)
    return ((SDXL_TEXT_PREFIXES[0], "clip"), (SDXL_TEXT_PREFIXES[1], "openclip"))


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> StateDict:
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def add_prefix(state_dict: Mapping[str, Tensor], prefix: str) -> StateDict:
    return {prefix + k: v for k, v in state_dict.items()}


def checkpoint_to_components(state_dict: Mapping[str, Tensor], arch: Arch) -> Components:
    """Split an original-layout checkpoint into diffusers-layout UNet, VAE and text encoder dicts."""
    texts = []
    for prefix, style in text_prefixes(arch):
        part = strip_prefix(state_dict, prefix)
        texts.append(clip_to_hf(part) if style == "clip" else openclip_to_hf(part))
    return Components(
        unet=unet_to_diffusers(strip_prefix(state_dict, UNET_PREFIX)),
        vae=vae_to_diffusers(strip_prefix(state_dict, VAE_PREFIX)),
        text_encoders=texts,
    )


def components_to_checkpoint(components: Components, arch: Arch) -> StateDict:
    """The inverse of :func:`checkpoint_to_components`: one original-layout state dict."""
    out = add_prefix(unet_to_original(components.unet), UNET_PREFIX)
    out.update(add_prefix(vae_to_original(components.vae), VAE_PREFIX))
    for (prefix, style), text in zip(text_prefixes(arch), components.text_encoders, strict=True):
        out.update(add_prefix(hf_to_clip(text) if style == "clip" else hf_to_openclip(text), prefix))
    return out


# --- UNet -----------------------------------------------------------------------------------------------

_UNET_TOP = {
    "time_embed.0.": "time_embedding.linear_1.",
    "time_embed.2.": "time_embedding.linear_2.",
    "label_emb.0.0.": "add_embedding.linear_1.",
    "label_emb.0.2.": "add_embedding.linear_2.",
    "input_blocks.0.0.": "conv_in.",
    "out.0.": "conv_norm_out.",
    "out.2.": "conv_out.",
}
_RESNET = {
    "in_layers.0.": "norm1.",
    "in_layers.2.": "conv1.",
    "emb_layers.1.": "time_emb_proj.",
    "out_layers.0.": "norm2.",
    "out_layers.3.": "conv2.",
    "skip_connection.": "conv_shortcut.",
}
_MID = {"0": "resnets.0", "1": "attentions.0", "2": "resnets.1"}


def _rename_prefix(rest: str, table: Mapping[str, str]) -> str:
    for old, new in table.items():
        if rest.startswith(old):
            return new + rest[len(old) :]
    return rest


def _original_layers_per_block(keys: list[str]) -> int:
    """LDM numbers input blocks flatly; the first downsampler ("op") sits right after the first level."""
    ops = [int(m.group(1)) for k in keys if (m := re.match(r"input_blocks\.(\d+)\.0\.op\.", k))]
    if ops:
        return min(ops) - 1
    return max(int(m.group(1)) for k in keys if (m := re.match(r"input_blocks\.(\d+)\.", k)))


def unet_to_diffusers(state_dict: Mapping[str, Tensor]) -> StateDict:
    keys = list(state_dict)
    per_level = _original_layers_per_block(keys) + 1
    return {_unet_key_to_diffusers(k, per_level): v for k, v in state_dict.items()}


def _unet_key_to_diffusers(key: str, per_level: int) -> str:
    renamed = _rename_prefix(key, _UNET_TOP)
    if renamed != key:
        return renamed
    if m := re.match(r"input_blocks\.(\d+)\.(\d+)\.(.*)", key):
        index, part, rest = int(m.group(1)) - 1, m.group(2), m.group(3)
        level, layer = divmod(index, per_level)
        if layer == per_level - 1:
            return f"down_blocks.{level}.downsamplers.0.conv.{rest.removeprefix('op.')}"
        if part == "0":
            return f"down_blocks.{level}.resnets.{layer}.{_rename_prefix(rest, _RESNET)}"
        return f"down_blocks.{level}.attentions.{layer}.{rest}"
    if m := re.match(r"middle_block\.(\d+)\.(.*)", key):
        rest = m.group(2) if m.group(1) == "1" else _rename_prefix(m.group(2), _RESNET)
        return f"mid_block.{_MID[m.group(1)]}.{rest}"
    if m := re.match(r"output_blocks\.(\d+)\.(\d+)\.(.*)", key):
        level, layer = divmod(int(m.group(1)), per_level)
        part, rest = m.group(2), m.group(3)
        if part == "0":
            return f"up_blocks.{level}.resnets.{layer}.{_rename_prefix(rest, _RESNET)}"
        # The upsampler follows the resnet (index 1) or the attention (index 2); only it has a bare "conv".
        if rest.startswith("conv."):
            return f"up_blocks.{level}.upsamplers.0.{rest}"
        return f"up_blocks.{level}.attentions.{layer}.{rest}"
    return key


def unet_to_original(state_dict: Mapping[str, Tensor]) -> StateDict:
    keys = list(state_dict)
    layers = 1 + max(int(m.group(1)) for k in keys if (m := re.match(r"down_blocks\.0\.resnets\.(\d+)\.", k)))
    attention_levels = {
        int(m.group(1)) for k in keys if (m := re.match(r"up_blocks\.(\d+)\.attentions\.", k))
    }
    return {_unet_key_to_original(k, layers + 1, attention_levels): v for k, v in state_dict.items()}


def _unet_key_to_original(key: str, per_level: int, up_attention_levels: set[int]) -> str:
    renamed = _rename_prefix(key, {v: k for k, v in _UNET_TOP.items()})
    if renamed != key:
        return renamed
    resnet_back = {v: k for k, v in _RESNET.items()}
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.*)", key):
        level, kind, layer, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        if kind == "downsamplers":
            return f"input_blocks.{1 + level * per_level + per_level - 1}.0.op.{rest.removeprefix('conv.')}"
        index = 1 + level * per_level + layer
        if kind == "resnets":
            return f"input_blocks.{index}.0.{_rename_prefix(rest, resnet_back)}"
        return f"input_blocks.{index}.1.{rest}"
    if m := re.match(r"mid_block\.(resnets\.\d+|attentions\.0)\.(.*)", key):
        part = {v: k for k, v in _MID.items()}[m.group(1)]
        rest = m.group(2) if part == "1" else _rename_prefix(m.group(2), resnet_back)
        return f"middle_block.{part}.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions|upsamplers)\.(\d+)\.(.*)", key):
        level, kind, layer, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        if kind == "upsamplers":
            part = 2 if level in up_attention_levels else 1
            return f"output_blocks.{level * per_level + per_level - 1}.{part}.{rest}"
        index = level * per_level + layer
        if kind == "resnets":
            return f"output_blocks.{index}.0.{_rename_prefix(rest, resnet_back)}"
        return f"output_blocks.{index}.1.{rest}"
    return key


# --- VAE ------------------------------------------------------------------------------------------------

_VAE_ATTENTION = {
    "norm.": "group_norm.",
    "q.": "to_q.",
    "k.": "to_k.",
    "v.": "to_v.",
    "proj_out.": "to_out.0.",
}
_VAE_ATTENTION_LINEAR = ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight")
_VAE_IGNORED = ("loss.",)  # the training loss (LPIPS, discriminator) ships in some .vae.pt files


def vae_to_diffusers(state_dict: Mapping[str, Tensor]) -> StateDict:
    levels = {int(m.group(1)) for k in state_dict if (m := re.match(r"decoder\.up\.(\d+)\.", k))}
    out = {}
    for key, value in state_dict.items():
        if key.startswith(_VAE_IGNORED):
            continue
        new = _vae_key_to_diffusers(key, len(levels))
        if new.endswith(_VAE_ATTENTION_LINEAR) and value.dim() == 4:
            value = value.reshape(value.shape[0], value.shape[1])  # 1x1 conv -> linear, a view
        out[new] = value
    return out


def _vae_key_to_diffusers(key: str, levels: int) -> str:
    if m := re.match(r"(encoder|decoder)\.norm_out\.(.*)", key):
        return f"{m.group(1)}.conv_norm_out.{m.group(2)}"
    if m := re.match(r"(encoder)\.down\.(\d+)\.block\.(\d+)\.(.*)", key):
        return f"encoder.down_blocks.{m.group(2)}.resnets.{m.group(3)}.{_vae_resnet(m.group(4))}"
    if m := re.match(r"encoder\.down\.(\d+)\.downsample\.(.*)", key):
        return f"encoder.down_blocks.{m.group(1)}.downsamplers.0.{m.group(2)}"
    # LDM numbers decoder levels from the lowest resolution up; diffusers in decoding order.
    if m := re.match(r"decoder\.up\.(\d+)\.block\.(\d+)\.(.*)", key):
        return (
            f"decoder.up_blocks.{levels - 1 - int(m.group(1))}.resnets.{m.group(2)}.{_vae_resnet(m.group(3))}"
        )
    if m := re.match(r"decoder\.up\.(\d+)\.upsample\.(.*)", key):
        return f"decoder.up_blocks.{levels - 1 - int(m.group(1))}.upsamplers.0.{m.group(2)}"
    if m := re.match(r"(encoder|decoder)\.mid\.block_(\d)\.(.*)", key):
        return f"{m.group(1)}.mid_block.resnets.{int(m.group(2)) - 1}.{_vae_resnet(m.group(3))}"
    if m := re.match(r"(encoder|decoder)\.mid\.attn_1\.(.*)", key):
        return f"{m.group(1)}.mid_block.attentions.0.{_rename_prefix(m.group(2), _VAE_ATTENTION)}"
    return key


def _vae_resnet(rest: str) -> str:
    return _rename_prefix(rest, {"nin_shortcut.": "conv_shortcut."})


def vae_to_original(state_dict: Mapping[str, Tensor]) -> StateDict:
    levels = {int(m.group(1)) for k in state_dict if (m := re.match(r"decoder\.up_blocks\.(\d+)\.", k))}
    out = {}
    for key, value in state_dict.items():
        if key.endswith(_VAE_ATTENTION_LINEAR) and value.dim() == 2:
            value = value.reshape(*value.shape, 1, 1)
        out[_vae_key_to_original(key, len(levels))] = value
    return out


def _vae_key_to_original(key: str, levels: int) -> str:
    back = {"conv_shortcut.": "nin_shortcut."}
    if m := re.match(r"(encoder|decoder)\.conv_norm_out\.(.*)", key):
        return f"{m.group(1)}.norm_out.{m.group(2)}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return f"encoder.down.{m.group(1)}.block.{m.group(2)}.{_rename_prefix(m.group(3), back)}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)", key):
        return f"encoder.down.{m.group(1)}.downsample.{m.group(2)}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
        return (
            f"decoder.up.{levels - 1 - int(m.group(1))}.block.{m.group(2)}.{_rename_prefix(m.group(3), back)}"
        )
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)", key):
        return f"decoder.up.{levels - 1 - int(m.group(1))}.upsample.{m.group(2)}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.*)", key):
        return f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{_rename_prefix(m.group(3), back)}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        return (
            f"{m.group(1)}.mid.attn_1.{_rename_prefix(m.group(2), {v: k for k, v in _VAE_ATTENTION.items()})}"
        )
    return key


# --- Text encoders --------------------------------------------------------------------------------------

# Dropped on load: the position ids are a constant buffer (some merged files store them as rounded floats,
# which would shift positions), OpenCLIP's logit_scale only matters for image-text similarity.
_TEXT_IGNORED = ("text_model.embeddings.position_ids", "logit_scale", "attn_mask")


def clip_to_hf(state_dict: Mapping[str, Tensor]) -> StateDict:
    """CLIP-L as stored under ``cond_stage_model.transformer.``: already Hugging Face names."""
    out = {}
    for key, value in state_dict.items():
        # Checkpoints saved with transformers < 4.20 lack the "text_model." level (A1111 renames them too).
        if not key.startswith(("text_model.", "text_projection.")):
            key = "text_model." + key
        if key not in _TEXT_IGNORED:
            out[key] = value
    return out


def hf_to_clip(state_dict: Mapping[str, Tensor]) -> StateDict:
    return dict(state_dict)


_OPENCLIP_LAYER = {
    "ln_1.": "layer_norm1.",
    "ln_2.": "layer_norm2.",
    "attn.out_proj.": "self_attn.out_proj.",
    "mlp.c_fc.": "mlp.fc1.",
    "mlp.c_proj.": "mlp.fc2.",
}
_QKV = ("q_proj", "k_proj", "v_proj")


def openclip_to_hf(state_dict: Mapping[str, Tensor]) -> StateDict:
    """OpenCLIP (SD2 ``cond_stage_model.model.``, SDXL ``conditioner.embedders.1.model.``) to HF names."""
    out = {}
    for key, value in state_dict.items():
        if key in _TEXT_IGNORED:
            continue
        if key == "text_projection":
            # OpenCLIP multiplies x @ P, nn.Linear does x @ W.T; contiguous so matmuls round as the original
            out["text_projection.weight"] = value.t().contiguous()
        elif key == "token_embedding.weight":
            out["text_model.embeddings.token_embedding.weight"] = value
        elif key == "positional_embedding":
            out["text_model.embeddings.position_embedding.weight"] = value
        elif key.startswith("ln_final."):
            out["text_model.final_layer_norm." + key.removeprefix("ln_final.")] = value
        elif m := re.match(r"transformer\.resblocks\.(\d+)\.(.*)", key):
            out.update(_openclip_layer_to_hf(f"text_model.encoder.layers.{m.group(1)}.", m.group(2), value))
        else:
            out[key] = value
    return out


def _openclip_layer_to_hf(prefix: str, rest: str, value: Tensor) -> StateDict:
    if m := re.match(r"attn\.in_proj_(weight|bias)", rest):
        return {
            f"{prefix}self_attn.{name}.{m.group(1)}": part
            for name, part in zip(_QKV, value.chunk(3), strict=True)
        }
    return {prefix + _rename_prefix(rest, _OPENCLIP_LAYER): value}


def hf_to_openclip(state_dict: Mapping[str, Tensor]) -> StateDict:
    out = {}
    back = {v: k for k, v in _OPENCLIP_LAYER.items()}
    for key, value in state_dict.items():
        if key == "text_projection.weight":
            out["text_projection"] = value.t()
        elif key == "text_model.embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif key == "text_model.embeddings.position_embedding.weight":
            out["positional_embedding"] = value
        elif key.startswith("text_model.final_layer_norm."):
            out["ln_final." + key.removeprefix("text_model.final_layer_norm.")] = value
        elif re.match(r"text_model\.encoder\.layers\.\d+\.self_attn\.[qkv]_proj\.", key):
            continue  # fused below, once per layer
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.(.*)", key):
            out[f"transformer.resblocks.{m.group(1)}.{_rename_prefix(m.group(2), back)}"] = value
        elif key not in _TEXT_IGNORED:
            out[key] = value
    out.update(_fuse_qkv(state_dict))
    return out


def _fuse_qkv(state_dict: Mapping[str, Tensor]) -> StateDict:
    layers = {
        int(m.group(1)) for k in state_dict if (m := re.match(r"text_model\.encoder\.layers\.(\d+)\.", k))
    }
    out = {}
    for layer in sorted(layers):
        prefix = f"text_model.encoder.layers.{layer}.self_attn."
        for kind in ("weight", "bias"):
            parts = [state_dict[f"{prefix}{name}.{kind}"] for name in _QKV]
            out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat(parts)
    return out
