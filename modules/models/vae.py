"""VAE selection: which VAE weights a checkpoint runs with, and swapping them into a loaded bundle.

Choices, as in A1111's "SD VAE" setting:
- ``"Automatic"``: a VAE named like the checkpoint beside it (``model.vae.pt``, ``model.vae.ckpt``,
  ``model.vae.safetensors``), else the checkpoint's own VAE;
- ``"None"``: the checkpoint's own VAE;
- a file name from models/VAE (original-layout VAE files, with or without the ``first_stage_model.`` prefix,
  and diffusers-layout VAE files).
With ``prefer_near_checkpoint`` (A1111's default "sd_vae_as_default"-style behaviour), a same-named VAE
beside the checkpoint wins even over a file chosen from the list.

SDXL's VAE overflows in fp16 (NaNs/black images); :func:`decode_dtype` says when to decode in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from modules.models.bundle import ModelBundle
from modules.models.convert import VAE_PREFIX, strip_prefix, vae_to_diffusers
from modules.models.loader import assign_weights
from modules.models.storage import read_state_dict

AUTOMATIC = "Automatic"
NONE = "None"
VAE_SUFFIXES = (".pt", ".ckpt", ".safetensors")
NEAR_CHECKPOINT_SUFFIXES = tuple(".vae" + s for s in VAE_SUFFIXES)


@dataclass(frozen=True)
class VaeFile:
    path: Path
    name: str  # the file name shown in the VAE dropdown


def list_vaes(vae_dir: Path, ckpt_dir: Path | None = None) -> list[VaeFile]:
    """VAE files in models/VAE (recursive), plus *.vae.* files among the checkpoints, by name."""
    found = []
    if Path(vae_dir).is_dir():
        found += [p for p in Path(vae_dir).rglob("*") if p.is_file() and p.suffix.lower() in VAE_SUFFIXES]
    if ckpt_dir and Path(ckpt_dir).is_dir():
        found += [p for p in Path(ckpt_dir).rglob("*") if p.name.lower().endswith(NEAR_CHECKPOINT_SUFFIXES)]
    return sorted({VaeFile(p, p.name) for p in found}, key=lambda v: v.name.lower())


def vae_near_checkpoint(checkpoint: Path) -> Path | None:
    checkpoint = Path(checkpoint)
    stem = checkpoint.name if checkpoint.is_dir() else checkpoint.stem
    for suffix in NEAR_CHECKPOINT_SUFFIXES:
        candidate = checkpoint.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def resolve_vae(
    choice: str, checkpoint: Path, vaes: list[VaeFile], prefer_near_checkpoint: bool = True
) -> Path | None:
    """The VAE file to use, or None for the checkpoint's own. Unknown names raise ValueError."""
    near = vae_near_checkpoint(checkpoint)
    if near and (choice == AUTOMATIC or prefer_near_checkpoint and choice != NONE):
        return near
    if choice in (AUTOMATIC, NONE):
        return None
    for vae in vaes:
        if choice in (vae.name, str(vae.path), vae.path.stem):
            return vae.path
    raise ValueError(f"VAE {choice!r} not found; known: {', '.join(v.name for v in vaes) or 'none'}")


def read_vae_weights(path: Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """A VAE file's weights in diffusers layout, whatever layout the file uses."""
    state, _ = read_state_dict(Path(path), dtype)
    if any(k.startswith(VAE_PREFIX) for k in state):
        state = strip_prefix(state, VAE_PREFIX)  # a full checkpoint, or a VAE saved with its prefix
    if any(k.startswith("encoder.down_blocks.") for k in state):
        return state  # already diffusers layout
    return vae_to_diffusers(state)


def apply_vae(bundle: ModelBundle, vae_path: Path | None) -> None:
    """Load ``vae_path`` (None: the checkpoint's own VAE again) into the bundle's VAE, in place."""
    source = vae_path if vae_path is not None else bundle.path
    if source is None:
        raise ValueError("this bundle has no checkpoint file to restore its own VAE from")
    source = Path(source)
    if source.is_dir():
        state = _diffusers_folder_vae(source)
    else:
        state = read_vae_weights(source, bundle.vae.dtype)
    device = next(bundle.vae.parameters()).device
    assign_weights(
        bundle.vae, {k: v.to(device=device, dtype=bundle.vae.dtype) for k, v in state.items()}, "VAE"
    )
    bundle.vae_name = Path(vae_path).name if vae_path is not None else None
    bundle.vae_sha256 = None


def _diffusers_folder_vae(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted((folder / "vae").glob("*.safetensors")) or sorted((folder / "vae").glob("*.bin"))
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(read_state_dict(file)[0])
    return state


def decode_dtype(bundle: ModelBundle, no_half_vae: bool = False) -> torch.dtype:
    """The dtype to run the VAE decoder in.

    fp16 decoding overflows in SDXL's VAE (its config says ``force_upcast``) and, rarely, in others;
    A1111's --no-half-vae forces fp32 for all. bf16 has fp32's range, so it never needs upcasting.
    """
    if bundle.vae.dtype != torch.float16:
        return bundle.vae.dtype
    if no_half_vae or getattr(bundle.vae.config, "force_upcast", False):
        return torch.float32
    return torch.float16
