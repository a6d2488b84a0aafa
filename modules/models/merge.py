"""Checkpoint merging, as A1111's Checkpoint Merger tab: weighted sum and add difference.

- weighted sum:   A * (1 - M) + B * M
- add difference: A + (B - C) * M

Inputs are read whole (as in A1111; A's tensors are released as they are merged); each tensor is
computed in float32 and stored in the promoted dtype of the inputs (A1111 merges in place, so fp16 + fp32 gives fp32), or fp16 on request.
Quirks kept from A1111:
- keys only in A are copied; keys only in B are added (weighted sum), so partial files still merge;
- an inpainting (9-channel) or depth (5-channel) A merged with a 4-channel B merges only the first four
  input channels of the first UNet conv and keeps A's extra channels; the other way round is refused,
  because the result would lose the extra channels;
- CLIP's position_ids are never merged (they are integers; averaging them shifts token positions).
The output .safetensors carries "sd_merge_recipe" and "sd_merge_models" metadata with the inputs' hashes,
and A's architecture description (``sdwebui_config``: the hyperparameters shapes cannot reveal, such
as the bundled demo model's group norms), so the merged file loads as its sources do. Inputs whose
descriptions differ are refused: their weights do not belong to one architecture.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from modules.models.convert import VAE_PREFIX
from modules.models.detect import METADATA_KEY
from modules.models.hashes import HashCache, legacy_model_hash
from modules.models.storage import read_keys, read_state_dict, save_state_dict

WEIGHTED_SUM = "Weighted sum"
ADD_DIFFERENCE = "Add difference"
FIRST_CONV = "model.diffusion_model.input_blocks.0.0.weight"
_NEVER_MERGED = ("cond_stage_model.transformer.text_model.embeddings.position_ids",)


@dataclass(frozen=True)
class MergeRequest:
    primary: Path
    secondary: Path
    output: Path
    method: str = WEIGHTED_SUM
    multiplier: float = 0.3
    tertiary: Path | None = None
    save_as_half: bool = False
    bake_in_vae: Path | None = None


def merge_checkpoints(request: MergeRequest, hash_cache: HashCache | None = None) -> Path:
    """Merge per ``request`` and write the result; returns the output path."""
    if request.method not in (WEIGHTED_SUM, ADD_DIFFERENCE):
        raise ValueError(f"unknown merge method {request.method!r}")
    if request.method == ADD_DIFFERENCE and request.tertiary is None:
        raise ValueError("add difference needs a tertiary model (C)")
    combine = _combiner(request.method, request.multiplier)
    needs_c = request.method == ADD_DIFFERENCE
    a, meta_a = read_state_dict(request.primary)
    b, meta_b = read_state_dict(request.secondary)
    c, meta_c = read_state_dict(request.tertiary) if request.tertiary else (None, {})
    architecture = _architecture(meta_a, meta_b, meta_c if request.tertiary else meta_a)
    merged = {}
    for key in list(a):
        merged[key] = _merge_key(
            key, a.pop(key), b.get(key), c.get(key) if needs_c else None, combine, needs_c
        )
    if request.method == WEIGHTED_SUM:
        merged.update({k: v for k, v in b.items() if k not in merged})
    if request.bake_in_vae:
        merged.update(_vae_weights(request.bake_in_vae))
    if request.save_as_half:
        merged = {k: v.half() if v.is_floating_point() else v for k, v in merged.items()}
    metadata = _metadata(request, hash_cache or HashCache(None))
    if architecture:
        metadata[METADATA_KEY] = architecture
    save_state_dict(merged, request.output, metadata)
    return request.output


def _architecture(*metadata: dict[str, str]) -> str | None:
    """The inputs' shared architecture description (None when they carry none)."""
    found = {m[METADATA_KEY] for m in metadata if m.get(METADATA_KEY)}
    if len(found) > 1:
        raise ValueError("the models have different architectures (their sdwebui_config differs)")
    return found.pop() if found else None


Combine = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def _combiner(method: str, multiplier: float) -> Combine:
    if method == WEIGHTED_SUM:
        return lambda a, b, _c: a * (1 - multiplier) + b * multiplier
    return lambda a, b, c: a + (b - c) * multiplier


def _merge_key(
    key: str, a: torch.Tensor, b: torch.Tensor | None, c: torch.Tensor | None, combine: Combine, needs_c: bool
) -> torch.Tensor:
    # A key missing from C counts as B - C = 0 (A1111 zeroes it), which leaves A unchanged.
    if b is None or key in _NEVER_MERGED or not a.is_floating_point() or (needs_c and c is None):
        return a
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    if a.shape == b.shape:
        return combine(a.float(), b.float(), None if c is None else c.float()).to(out_dtype)
    if (
        key == FIRST_CONV
        and a.shape[1] > b.shape[1]
        and a.shape[:1] + a.shape[2:] == b.shape[:1] + b.shape[2:]
    ):
        merged = a.float().clone()
        channels = b.shape[1]
        part_c = None if c is None else c.float()[:, :channels]
        merged[:, :channels] = combine(merged[:, :channels], b.float(), part_c)
        return merged.to(out_dtype)
    if key == FIRST_CONV and a.shape[1] < b.shape[1]:
        raise ValueError("when merging an inpainting or depth model with a normal one, A must be that model")
    raise ValueError(f"cannot merge {key}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")


def _vae_weights(path: Path) -> dict[str, torch.Tensor]:
    state, _ = read_state_dict(path)
    if any(k.startswith(VAE_PREFIX) for k in state):
        return {k: v for k, v in state.items() if k.startswith(VAE_PREFIX)}
    return {VAE_PREFIX + k: v for k, v in state.items() if not k.startswith("loss.")}


def _metadata(request: MergeRequest, hashes: HashCache) -> dict[str, str]:
    inputs = [p for p in (request.primary, request.secondary, request.tertiary) if p is not None]
    sha = {p: hashes.sha256(p) for p in inputs}
    recipe = {
        "type": "webui",
        "primary_model_hash": sha[request.primary],
        "secondary_model_hash": sha[request.secondary],
        "tertiary_model_hash": sha[request.tertiary] if request.tertiary else None,
        "interp_method": request.method,
        "multiplier": request.multiplier,
        "save_as_half": request.save_as_half,
        "bake_in_vae": Path(request.bake_in_vae).name if request.bake_in_vae else None,
        "is_inpainting": _first_conv_channels(request.primary) == 9,
    }
    models = {sha[p]: {"name": Path(p).stem, "legacy_hash": legacy_model_hash(p)} for p in inputs}
    return {"format": "pt", "sd_merge_recipe": json.dumps(recipe), "sd_merge_models": json.dumps(models)}


def _first_conv_channels(path: Path) -> int | None:
    if FIRST_CONV not in read_keys(path):
        return None
    state, _ = read_state_dict(path, keep=lambda k: k == FIRST_CONV)
    return state[FIRST_CONV].shape[1]
