"""Per-image seeded Brownian-motion noise for the SDE samplers (DPM++ SDE, 2M SDE, 3M SDE).

A Brownian tree answers "the increment of one fixed Brownian path between two noise levels" for any
pair of levels, so the noise an SDE sampler sees is consistent however the steps are laid out. One tree
per image, seeded with the image's seed, keeps a seed's image independent of batch size and position
(A1111's behaviour; k-diffusion's ``BrownianTreeNoiseSampler`` with a list of seeds).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchsde


def sigma_range(sigmas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (smallest positive, largest) sigma of a schedule: the interval the trees must cover."""
    return sigmas[sigmas > 0].min(), sigmas.max()


class BrownianNoiseSampler:
    """``(sigma, sigma_next) -> noise``: unit-variance Brownian increments, one tree per image seed."""

    def __init__(
        self, x: torch.Tensor, sigma_min: torch.Tensor, sigma_max: torch.Tensor, seeds: Sequence[int]
    ) -> None:
        if len(seeds) != x.shape[0]:
            raise ValueError(f"need one seed per image: {len(seeds)} seeds for a batch of {x.shape[0]}")
        t0, t1 = torch.as_tensor(sigma_min), torch.as_tensor(sigma_max)
        # The tree lives on the increasing interval; the sign remembers if it was given reversed.
        self.sign = 1 if t0 < t1 else -1
        t0, t1 = min(t0, t1), max(t0, t1)
        w0 = torch.zeros_like(x[0])
        self.trees = [torchsde.BrownianTree(t0, w0, t1, entropy=int(seed)) for seed in seeds]

    def __call__(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        t0, t1 = torch.as_tensor(sigma), torch.as_tensor(sigma_next)
        sign = self.sign * (1 if t0 < t1 else -1)
        low, high = min(t0, t1), max(t0, t1)
        w = torch.stack([tree(low, high) for tree in self.trees]) * sign
        return w / (t1 - t0).abs().sqrt()
