"""Building LoRA/LyCORIS files for the tiny models, and a runtime with the built-in LoRA extension loaded."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from modules import cmd_args, paths
from modules.extensions import loader
from modules.extensions.registry import ExtensionRegistry
from modules.runtime import Runtime

LORA_EXTENSION = paths.ROOT / "extensions-builtin" / "lora"
if str(LORA_EXTENSION) not in sys.path:  # lets tests import the extension's package directly
    sys.path.insert(0, str(LORA_EXTENSION))

# Re-exported for the tests (importable only once the folder is on sys.path).
import lora_networks as ln  # noqa: E402, F401
from lora_networks import deltas, keys  # noqa: E402, F401

# kohya names (diffusers form) of a few tiny-SD1 modules, with the weight shapes they patch.
UNET_ATTN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
UNET_ATTN2 = "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_v"
UNET_ATTN_COMPVIS = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q"
UNET_CONV3 = "lora_unet_down_blocks_0_resnets_0_conv1"
UNET_PROJ_IN = "lora_unet_down_blocks_0_attentions_0_proj_in"
TE_Q = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
TE_FC1 = "lora_te_text_model_encoder_layers_1_mlp_fc1"


def lora_module(
    generator: torch.Generator,
    out_features: int,
    in_features: int,
    rank: int,
    alpha: float | None,
    kernel: int = 0,
    std: float = 0.3,
) -> dict[str, torch.Tensor]:
    """up/down (and alpha) of one module; kernel > 0 makes a conv LoRA (down k x k, up 1 x 1)."""
    down_shape = (rank, in_features, kernel, kernel) if kernel else (rank, in_features)
    up_shape = (out_features, rank, 1, 1) if kernel else (out_features, rank)
    tensors = {
        "lora_down.weight": torch.randn(down_shape, generator=generator) * std,
        "lora_up.weight": torch.randn(up_shape, generator=generator) * std,
    }
    if alpha is not None:
        tensors["alpha"] = torch.tensor(float(alpha))
    return tensors


def sd1_lora_tensors(
    seed: int = 0,
    unet: bool = True,
    te: bool = True,
    compvis: bool = False,
    rank: int = 4,
    alpha: float = 2.0,
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    modules: dict[str, dict[str, torch.Tensor]] = {}
    if unet:
        modules[UNET_ATTN_COMPVIS if compvis else UNET_ATTN] = lora_module(generator, 32, 32, rank, alpha)
        modules[UNET_ATTN2] = lora_module(generator, 32, 32, rank, alpha)
        modules[UNET_CONV3] = lora_module(generator, 32, 32, rank, alpha, kernel=3)
        modules[UNET_PROJ_IN] = lora_module(generator, 32, 32, rank, alpha)  # linear LoRA on a 1x1 conv
    if te:
        modules[TE_Q] = lora_module(generator, 32, 32, rank, alpha, std=1.0)
        modules[TE_FC1] = lora_module(generator, 64, 32, rank, alpha, std=1.0)
    return {f"{prefix}.{suffix}": t for prefix, parts in modules.items() for suffix, t in parts.items()}


def write_lora(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def lora_runtime(data_dir: Path, bundle) -> Runtime:
    """A runtime on ``bundle`` with only the built-in LoRA extension loaded through the real loader."""
    registry = ExtensionRegistry()
    extensions = loader.discover(set(), dirs=((LORA_EXTENSION.parent, True),))
    loader.load_scripts([e for e in extensions if e.path == LORA_EXTENSION], registry)
    assert not registry.errors, registry.errors
    runtime = Runtime(cmd_args.parse(["--data-dir", str(data_dir), "--device", "cpu"]), registry)
    runtime.model_loader = lambda: bundle
    return runtime


def state_of(bundle) -> dict[str, torch.Tensor]:
    """Every weight of the model, copied: to check a job left the shared model bit-identical."""
    parts = {"unet": bundle.unet, **{f"te{i}": m for i, m in enumerate(bundle.text_encoders)}}
    return {f"{name}.{k}": v.detach().clone() for name, m in parts.items() for k, v in m.state_dict().items()}


def assert_same_state(before: dict[str, torch.Tensor], bundle) -> None:
    after = state_of(bundle)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"weights not restored: {changed[:5]}"
