"""Choosing the torch device, the precision of each network and the attention kernel from the flags.

Flags follow A1111's names: ``--no-half`` (every network in float32), ``--no-half-vae`` (the VAE in
float32), ``--upcast-sampling`` (UNet weights in half precision, its maths in float32), ``--xformers``.
``--precision`` picks the half type (fp16, A1111's, by default on a GPU; bf16 where the card has it).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch


def choose_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was given, but torch sees no CUDA device")
    return torch.device(name)


def choose_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The weights dtype for ``--precision``: fp16 on a GPU, fp32 on the CPU (A1111's choice there, so
    seeds give its images; see ``precision_hint`` for CPUs where bf16 pays); bf16 only where the device
    computes it."""
    if precision == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SystemExit("--precision bf16: this GPU has no bfloat16; use fp16 (the default) or --no-half")
    return dtype


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX), where bf16 weights pay."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def precision_hint(precision: str, device: torch.device, no_half: bool = False) -> str | None:
    """A start-up tip when a faster precision exists than the one chosen automatically.

    On the CPU the automatic choice stays float32, A1111's, so its parameters texts give the same
    images; bf16 weights change them slightly (bench/bench_quality_trades.py: a mean of 0.34 levels on
    the bundled model, no held-out caption lost) and, on a CPU with bf16 instructions, run the UNet
    2.4x faster (bench/bench_unet_variants.py, docs/PERFORMANCE.md).
    """
    if precision != "auto" or no_half or device.type != "cpu" or not cpu_computes_bf16():
        return None
    return (
        "This CPU computes bfloat16 natively: --precision bf16 generates about twice as fast, with images "
        "that differ slightly from float32's (and from other web UIs' on the same seed)."
    )


@dataclass(frozen=True)
class Precision:
    """The dtype each network is stored and run in."""

    weights: torch.dtype  # text encoders and the UNet's stored weights
    vae: torch.dtype
    unet_compute: torch.dtype | None = None  # the UNet's maths when it differs from its weights


def choose_precision(
    precision: str,
    device: torch.device,
    *,
    no_half: bool = False,
    no_half_vae: bool = False,
    upcast_sampling: bool = False,
) -> Precision:
    weights = torch.float32 if no_half else choose_dtype(precision, device)
    vae = torch.float32 if no_half_vae else weights
    # A1111 compatibility: --upcast-sampling has no effect with full-precision weights.
    compute = torch.float32 if upcast_sampling and weights != torch.float32 else None
    return Precision(weights=weights, vae=vae, unet_compute=compute)


def precision_from_args(args: object, device: torch.device) -> Precision:
    return choose_precision(
        getattr(args, "precision", "auto"),
        device,
        no_half=getattr(args, "no_half", False),
        no_half_vae=getattr(args, "no_half_vae", False),
        upcast_sampling=getattr(args, "upcast_sampling", False),
    )


def xformers_available() -> bool:
    return importlib.util.find_spec("xformers") is not None


def choose_attention(xformers: bool) -> str:
    """ "sdpa" (PyTorch's scaled-dot-product attention, the default) or "xformers" (asked for, installed)."""
    if not xformers:
        return "sdpa"
    if not xformers_available():
        raise SystemExit("--xformers was given, but the xformers package is not installed")
    return "xformers"
