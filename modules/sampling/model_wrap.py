"""Turns a UNet-style ``apply_model(x, timestep, **kw) -> eps or v`` into a denoiser ``(x, sigma, **kw)``.

The samplers work on the variance-exploding latent ``x = x0 + sigma * noise``; the UNet was trained on
the variance-preserving one at discrete timesteps. ``c_in`` rescales the input, the timestep comes from
sigma by log-sigma interpolation, and the output is turned back into a denoised latent (Karras et al.
2022, Table 1, as k-diffusion's ``CompVisDenoiser`` / ``CompVisVDenoiser`` do). ``LCMDenoiser`` is the
variant A1111 uses for its LCM sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from modules.sampling.sigmas import ModelSchedule, lcm_sigmas

ApplyModel = Callable[..., torch.Tensor]


def _per_sample(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return value.reshape(value.shape + (1,) * (x.ndim - value.ndim))


class _DeviceCopies:
    """The model schedule on each device a denoiser is called on, made once: the timestep of a sigma is
    then computed beside the latent (no host round trip per call), as in A1111 where it is a buffer."""

    def __init__(self, schedule: ModelSchedule) -> None:
        self.schedule = schedule
        self.copies: dict[torch.device, ModelSchedule] = {}

    def __call__(self, device: torch.device) -> ModelSchedule:
        if device not in self.copies:
            self.copies[device] = self.schedule.to(device)
        return self.copies[device]


class DiscreteDenoiser:
    """Denoiser over a discrete-timestep model predicting ``"epsilon"`` or ``"v_prediction"``."""

    def __init__(
        self, apply_model: ApplyModel, schedule: ModelSchedule, prediction_type: str = "epsilon"
    ) -> None:
        if prediction_type not in {"epsilon", "v_prediction"}:
            raise ValueError(
                f"unknown prediction type {prediction_type!r}: expected 'epsilon' or 'v_prediction'"
            )
        self.apply_model = apply_model
        self.schedule = schedule
        self.prediction_type = prediction_type
        self._on_device = _DeviceCopies(schedule)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        s = _per_sample(sigma, x)
        c_in = 1 / (s**2 + 1) ** 0.5
        schedule = self._on_device(x.device)
        out = self.apply_model(x * c_in, schedule.sigma_to_t(sigma.to(schedule.sigmas)), **kwargs)
        out = out.to(x.dtype)
        if self.prediction_type == "epsilon":
            return x - s * out
        # v = alpha * eps - sigma_vp * x0  =>  x0 = c_skip * x + c_out * v with sigma_data = 1.
        c_skip = 1 / (s**2 + 1)
        c_out = -s / (s**2 + 1) ** 0.5
        return out * c_out + x * c_skip


class LCMDenoiser:
    """A1111's LCM wrapper: eps model at LCM's 50 timesteps, with the consistency-model boundary scalings."""

    sigma_data = 0.5
    timestep_scaling = 10.0

    def __init__(self, apply_model: ApplyModel, schedule: ModelSchedule) -> None:
        self.apply_model = apply_model
        self.schedule = schedule
        self.skip = len(schedule.sigmas) // len(lcm_sigmas(schedule))
        self._on_device = _DeviceCopies(schedule)

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """The nearest of LCM's timesteps 19, 39, ..., 999 (quantised in log sigma)."""
        log_sigmas = lcm_sigmas(self._on_device(sigma.device)).log()
        dists = sigma.to(log_sigmas).log() - log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape) * self.skip + (self.skip - 1)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        s = _per_sample(sigma, x)
        t = self.sigma_to_t(sigma)
        eps = self.apply_model(x / (s**2 + 1) ** 0.5, t, **kwargs).to(x.dtype)
        scaled = _per_sample(t.to(x.dtype), x) * self.timestep_scaling
        c_skip = self.sigma_data**2 / (scaled**2 + self.sigma_data**2)
        c_out = scaled / (scaled**2 + self.sigma_data**2) ** 0.5
        # A1111 compatibility: the skip term uses the VE input x, not the VP sample diffusers uses.
        return c_out * (x - s * eps) + c_skip * x


def make_denoiser(
    kind: str, apply_model: ApplyModel, schedule: ModelSchedule, prediction_type: str = "epsilon"
) -> DiscreteDenoiser | LCMDenoiser:
    """The denoiser a sampler asks for (``SamplerInfo.denoiser``): ``"discrete"`` or ``"lcm"``."""
    if kind == "lcm":
        return LCMDenoiser(apply_model, schedule)
    if kind == "discrete":
        return DiscreteDenoiser(apply_model, schedule, prediction_type)
    raise ValueError(f"unknown denoiser kind {kind!r}: expected 'discrete' or 'lcm'")
