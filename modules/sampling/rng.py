"""Seeded noise per image, reproducing AUTOMATIC1111's seeds bit for bit.

Each image of a batch draws from its own generator seeded with its own seed, so a seed gives the same
image at any batch size or position. ``ImageRNG.first()`` is the starting noise (with variation seed
and "resize seed from" applied); ``next()`` gives the fresh noise ancestral samplers add, from the same
per-image generators, reseeded with ``seed + ENSD`` after the first draw when an eta noise seed delta
is set. Sources: ``"cpu"`` (torch's CPU generator), ``"gpu"`` (torch's generator on the model's device,
A1111's default, so its parameters texts without an "RNG" key reproduce on CUDA) and ``"nv"`` (NVIDIA's
CUDA stream reproduced anywhere, see ``rng_philox``). Whatever the source, the noise is returned on
the given device: CPU and NV noise is drawn on the host and moved once per draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from modules.sampling.rng_philox import PhiloxGenerator

SOURCES = ("cpu", "gpu", "nv")


def draw_device(source: str, device: torch.device) -> torch.device:
    """Where torch's generator for ``source`` draws when the model runs on ``device``."""
    # A1111 compatibility: "GPU" on Apple's MPS draws on the CPU (MPS generators gave other streams).
    if source == "cpu" or device.type == "mps":
        return torch.device("cpu")
    return device


def _generator(seed: int, source: str, device: torch.device) -> Any:
    # torch maps a negative seed s to s + 2**64; wrapping the same way keeps seed + offset (batch index,
    # ENSD) of a seed near the 64-bit limit valid instead of failing the job.
    seed = int(seed) % 2**64
    if source == "nv":
        return PhiloxGenerator(seed)
    return torch.Generator(draw_device(source, device)).manual_seed(seed)


def _draw(generator: Any, shape: tuple[int, ...], source: str, device: torch.device) -> torch.Tensor:
    if source == "nv":
        return torch.from_numpy(generator.randn(shape)).to(device)
    return torch.randn(shape, generator=generator, device=draw_device(source, device)).to(device)


def randn(
    seed: int, shape: tuple[int, ...], source: str = "cpu", device: torch.device | str = "cpu"
) -> torch.Tensor:
    """One seeded normal tensor, as torch.manual_seed(seed); torch.randn(shape) gives on CPU."""
    device = torch.device(device)
    return _draw(_generator(seed, source, device), tuple(shape), source, device)


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from low (val 0) to high (val 1), per column of a [C, H, W] noise tensor."""
    # A1111 compatibility: norms and angles are taken along dim 1 (per channel and column), not over the
    # whole tensor, and nearly parallel inputs fall back to low*val + high*(1-val) (weights swapped).
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(
        1
    ) * high


def _paste_centred(target: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Paste noise made at another size into target, centred; crop where it is larger."""
    dx = (target.shape[2] - noise.shape[2]) // 2
    dy = (target.shape[1] - noise.shape[1]) // 2
    w = noise.shape[2] if dx >= 0 else noise.shape[2] + 2 * dx
    h = noise.shape[1] if dy >= 0 else noise.shape[1] + 2 * dy
    tx, ty = max(dx, 0), max(dy, 0)
    sx, sy = max(-dx, 0), max(-dy, 0)
    target[:, ty : ty + h, tx : tx + w] = noise[:, sy : sy + h, sx : sx + w]
    return target


class ImageRNG:
    """Per-image seeded noise for one batch; ``shape`` is ONE image's latent shape ``(C, H, W)``."""

    def __init__(
        self,
        shape: Sequence[int],
        seeds: Sequence[int],
        subseeds: Sequence[int] | None = None,
        subseed_strength: float = 0.0,
        seed_resize_from_h: int = 0,
        seed_resize_from_w: int = 0,
        source: str = "cpu",
        eta_noise_seed_delta: int = 0,
        *,
        device: torch.device | str = "cpu",
        latent_factor: int = 8,
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"unknown noise source {source!r}: expected one of {', '.join(SOURCES)}")
        self.shape = tuple(int(s) for s in shape)
        self.seeds = [int(s) for s in seeds]
        self.subseeds = None if subseeds is None else [int(s) for s in subseeds]
        self.subseed_strength = subseed_strength
        self.seed_resize_from_h = seed_resize_from_h
        self.seed_resize_from_w = seed_resize_from_w
        self.source = source
        self.eta_noise_seed_delta = int(eta_noise_seed_delta or 0)
        self.device = torch.device(device)
        self.latent_factor = latent_factor
        self.generators = [_generator(seed, source, self.device) for seed in self.seeds]
        self.is_first = True

    def _source_shape(self) -> tuple[int, ...]:
        if self.seed_resize_from_h <= 0 or self.seed_resize_from_w <= 0:
            return self.shape
        f = self.latent_factor
        return (self.shape[0], int(self.seed_resize_from_h) // f, int(self.seed_resize_from_w) // f)

    def _image_noise(self, index: int, seed: int, noise_shape: tuple[int, ...]) -> torch.Tensor:
        resized = noise_shape != self.shape
        # A1111 compatibility: at the resize-from size the seed's noise comes from a separate fresh
        # generator, and the image's own generator then fills the full-size canvas around it.
        noise = randn(seed, noise_shape, self.source, self.device) if resized else self._own(index)
        if self.subseeds is not None and self.subseed_strength != 0:
            # A1111 compatibility: images beyond the subseed list use subseed 0.
            subseed = self.subseeds[index] if index < len(self.subseeds) else 0
            noise = slerp(self.subseed_strength, noise, randn(subseed, noise_shape, self.source, self.device))
        if resized:
            noise = _paste_centred(self._own(index), noise)
        return noise

    def _own(self, index: int) -> torch.Tensor:
        return _draw(self.generators[index], self.shape, self.source, self.device)

    def first(self) -> torch.Tensor:
        """The batch's starting noise ``[B, C, H, W]``; afterwards ``next()`` gives sampler noise."""
        noise_shape = self._source_shape()
        images = [self._image_noise(i, seed, noise_shape) for i, seed in enumerate(self.seeds)]
        if self.eta_noise_seed_delta:
            delta = self.eta_noise_seed_delta
            self.generators = [_generator(seed + delta, self.source, self.device) for seed in self.seeds]
        self.is_first = False
        return torch.stack(images)

    def next(self) -> torch.Tensor:
        """Fresh per-image noise; the first call returns ``first()``, as in A1111."""
        if self.is_first:
            return self.first()
        return torch.stack([self._own(i) for i in range(len(self.seeds))])


class ImageNoiseSampler:
    """A ``(sigma, sigma_next) -> noise`` source for ancestral samplers, drawing ``ImageRNG.next()``."""

    def __init__(self, rng: ImageRNG) -> None:
        self.rng = rng

    def __call__(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return self.rng.next()
