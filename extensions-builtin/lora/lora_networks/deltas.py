"""The weight change one module of a network file makes: LoRA/LoCon, LoHa, LoKr and full diffs.

Each builder turns a module's tensors (suffix -> tensor, e.g. "lora_up.weight") into ``(delta, scale)``
with ``delta`` already in the target weight's shape; the patcher multiplies by the user's weight.
Scale is alpha / rank where the file has an alpha (as kohya and LyCORIS train them), else 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

Weights = Mapping[str, Tensor]


class UnsupportedModule(ValueError):
    """The module's tensors are of a network type this extension does not apply."""


def _scale(weights: Weights, rank: int | None) -> float:
    alpha = weights.get("alpha")
    if alpha is None or rank is None:
        return 1.0
    return float(alpha) / rank


def _fit(delta: Tensor, shape: torch.Size) -> Tensor:
    # A linear LoRA on a 1x1 conv (SD1's proj_in) or the reverse: same numbers, other shape (as A1111).
    if delta.numel() != math.prod(shape):
        raise UnsupportedModule(f"delta of shape {tuple(delta.shape)} does not fit weight {tuple(shape)}")
    return delta.reshape(shape)


def lora(weights: Weights, shape: torch.Size, dyn_dim: int | None = None) -> tuple[Tensor, float]:
    up, down = weights["lora_up.weight"].float(), weights["lora_down.weight"].float()
    rank = down.shape[0]
    if dyn_dim:
        # <lora:name:te:unet:dyn> keeps the first ranks only; the scale still uses the trained rank.
        up, down = up[:, :dyn_dim], down[:dyn_dim]
    mid = weights.get("lora_mid.weight")
    if mid is not None:  # LoCon's CP decomposition: the spatial kernel sits in the middle matrix
        delta = torch.einsum("n m k l, i n, m j -> i j k l", mid.float(), up.flatten(1), down.flatten(1))
    else:
        # (out, rank) @ (rank, in*kh*kw): a 3x3 conv's down keeps its kernel, its up is 1x1.
        delta = up.flatten(1) @ down.flatten(1)
    return _fit(delta, shape), _scale(weights, rank)


def loha(weights: Weights, shape: torch.Size) -> tuple[Tensor, float]:
    if "hada_t1" in weights:
        raise UnsupportedModule("LoHa with CP decomposition (hada_t1) is not supported")
    w1 = weights["hada_w1_a"].float() @ weights["hada_w1_b"].float()
    w2 = weights["hada_w2_a"].float() @ weights["hada_w2_b"].float()
    return _fit(w1 * w2, shape), _scale(weights, weights["hada_w1_b"].shape[0])


def _factor(weights: Weights, name: str) -> Tensor:
    if name in weights:
        return weights[name].float()
    if f"{name}_a" in weights:
        return weights[f"{name}_a"].float() @ weights[f"{name}_b"].float()
    raise UnsupportedModule(f"LoKr module without {name}")


def lokr(weights: Weights, shape: torch.Size) -> tuple[Tensor, float]:
    if "lokr_t2" in weights:
        raise UnsupportedModule("LoKr with CP decomposition (lokr_t2) is not supported")
    w1, w2 = _factor(weights, "lokr_w1"), _factor(weights, "lokr_w2")
    if w2.dim() == 4:  # a conv's kernel lives in the second factor
        w1 = w1[:, :, None, None]
    # LyCORIS (and A1111) take the rank from whichever factor was decomposed; none: no alpha scaling.
    rank = next((weights[k].shape[0] for k in ("lokr_w1_b", "lokr_w2_b") if k in weights), None)
    return _fit(torch.kron(w1, w2), shape), _scale(weights, rank)


def full(weights: Weights, shape: torch.Size) -> tuple[Tensor, float]:
    return _fit(weights["diff"].float(), shape), 1.0


def compute(weights: Weights, shape: torch.Size, dyn_dim: int | None = None) -> tuple[Tensor, float]:
    """The module's delta (in the weight's shape, float32) and its alpha scale."""
    if "dora_scale" in weights:
        raise UnsupportedModule("DoRA (dora_scale) is not supported")
    if "lora_up.weight" in weights and "lora_down.weight" in weights:
        return lora(weights, shape, dyn_dim)
    if "hada_w1_a" in weights:
        return loha(weights, shape)
    if "lokr_w1" in weights or "lokr_w1_a" in weights:
        return lokr(weights, shape)
    if "diff" in weights:
        return full(weights, shape)
    raise UnsupportedModule(f"unknown network tensors: {', '.join(sorted(weights))}")
