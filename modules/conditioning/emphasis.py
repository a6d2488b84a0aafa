"""Emphasis: how per-token weights from ``(word:1.2)`` change the encoder output (A1111's modes)."""

from __future__ import annotations

import torch

# A1111 1.10's option values; there is no "Original + No norm" mode in 1.10.
ORIGINAL = "Original"  # weight, then rescale so the chunk's overall mean is unchanged
NO_NORM = "No norm"  # weight only (A1111 suggests it for SDXL)
IGNORE = "Ignore"  # parse weights but do not apply them
NONE = "None"  # do not parse the attention syntax at all: "(cat:1.2)" is literal text
EMPHASIS_MODES = (NONE, IGNORE, ORIGINAL, NO_NORM)


def check_mode(mode: str) -> str:
    if mode not in EMPHASIS_MODES:
        raise ValueError(f"unknown emphasis mode {mode!r}; expected one of {', '.join(EMPHASIS_MODES)}")
    return mode


def apply_emphasis(z: torch.Tensor, weights: torch.Tensor, mode: str) -> torch.Tensor:
    """Weighted encoder output for one chunk position across a batch: z ``[B, 77, C]``, weights ``[B, 77]``.

    For "Original" the mean is taken over the whole batch at once, because A1111 encodes all texts of
    one prompt's schedule as one batch and normalises that batch with a single scalar.
    """
    if mode in (NONE, IGNORE):
        return z
    weighted = z * weights.to(z.device).unsqueeze(-1)
    if mode == NO_NORM:
        return weighted
    return weighted * (z.mean() / weighted.mean())
