"""Helpers shared by the sampling tests (a module name no other test folder uses)."""

from __future__ import annotations

import torch

SHAPE = (2, 3, 4, 4)


class SeededNoise:
    """A reproducible ``(sigma, sigma_next) -> noise`` source; two instances with one seed agree."""

    def __init__(self, seed: int, shape=SHAPE) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.shape = shape
        self.calls = 0

    def __call__(self, sigma=None, sigma_next=None) -> torch.Tensor:
        self.calls += 1
        return torch.randn(self.shape, generator=self.generator, dtype=torch.float64)

    def randn_like(self, x) -> torch.Tensor:
        return self()
