"""Choosing the torch device and dtype from --device/--precision."""

from __future__ import annotations

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
    # On CPU half precision is 2-3x slower than fp32 and often unsupported, so auto means fp32 there.
    if precision == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
