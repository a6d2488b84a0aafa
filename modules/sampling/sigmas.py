"""Noise levels: the model's discrete training schedule and the schedule types that pick sampling sigmas.

``ModelSchedule`` maps between continuous sigmas and the 1000 training timesteps the way k-diffusion's
``DiscreteSchedule`` does (interpolation in log sigma). Every schedule type is a function
``fn(n, sigma_min, sigma_max, model_schedule) -> sigmas`` returning ``n + 1`` decreasing sigmas that end
in 0 (KL Optimal excepted, see there), matching AUTOMATIC1111 1.10's "Schedule type" values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

# Align Your Steps tables (11 noise levels) (NVIDIA's published values, as A1111 ships them).
AYS_SD15 = (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029)
AYS_SDXL = (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029)


@dataclass(frozen=True, eq=False)
class ModelSchedule:
    """A model's discrete noise schedule: ``sigmas[t]`` for training timesteps ``t = 0 .. T-1`` (ascending)."""

    sigmas: torch.Tensor
    is_sdxl: bool = False  # picks the Align Your Steps table

    @classmethod
    def from_alphas_cumprod(
        cls, alphas_cumprod: torch.Tensor, *, is_sdxl: bool = False, dtype: torch.dtype = torch.float32
    ) -> ModelSchedule:
        # A1111 compatibility: the LDM keeps alphas_cumprod as a float32 buffer and k-diffusion derives
        # the sigmas from it in float32, so the default dtype reproduces its sigma values bit for bit.
        a = alphas_cumprod.to(dtype)
        return cls(((1 - a) / a) ** 0.5, is_sdxl=is_sdxl)

    def to(self, device: torch.device | str) -> ModelSchedule:
        """The same schedule on ``device``; ``log_sigmas`` is then computed there, as A1111's buffers are."""
        return ModelSchedule(self.sigmas.to(device), is_sdxl=self.is_sdxl)

    @property
    def log_sigmas(self) -> torch.Tensor:
        return self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return 1 / (1 + self.sigmas**2)

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Fractional timestep of each sigma, linear in log sigma between neighbouring training steps."""
        sigma = torch.as_tensor(sigma, dtype=self.sigmas.dtype, device=self.sigmas.device)
        log_sigmas = self.log_sigmas
        log_sigma = sigma.log()
        dists = log_sigma - log_sigmas[:, None]
        # Index of the last table entry not above sigma; clamped so a neighbour above always exists.
        low = dists.reshape(len(log_sigmas), -1).ge(0).cumsum(dim=0).argmax(dim=0)
        low = low.clamp(max=len(log_sigmas) - 2)
        w = (log_sigmas[low] - log_sigma.reshape(-1)) / (log_sigmas[low] - log_sigmas[low + 1])
        w = w.clamp(0, 1)
        return ((1 - w) * low + w * (low + 1)).view(sigma.shape)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Sigma at a fractional timestep, interpolating log sigma between neighbouring training steps."""
        t = torch.as_tensor(t).float()
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        log_sigmas = self.log_sigmas
        return ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()


def _append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def uniform(n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule) -> torch.Tensor:
    """Timesteps evenly spaced over the whole training range (k-diffusion ``get_sigmas``)."""
    # A1111 compatibility: Uniform ignores sigma_min/sigma_max overrides, it always spans the model.
    t = torch.linspace(len(model_schedule.sigmas) - 1, 0, n)
    return _append_zero(model_schedule.t_to_sigma(t))


def karras(
    n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule | None = None, rho: float = 7.0
) -> torch.Tensor:
    """Karras et al. (2022), eq. 5: evenly spaced in sigma^(1/rho)."""
    ramp = torch.linspace(0, 1, n)
    inv_min, inv_max = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((inv_max + ramp * (inv_min - inv_max)) ** rho)


def exponential(
    n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule | None = None
) -> torch.Tensor:
    """Evenly spaced in log sigma."""
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def polyexponential(
    n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule | None = None, rho: float = 1.0
) -> torch.Tensor:
    """log sigma as a polynomial of degree rho in the step ramp (rho 1 is Exponential)."""
    ramp = torch.linspace(1, 0, n) ** rho
    log_min, log_max = math.log(sigma_min), math.log(sigma_max)
    return _append_zero(torch.exp(ramp * (log_max - log_min) + log_min))


def _timesteps_to_sigmas(timesteps: torch.Tensor, model_schedule: ModelSchedule) -> torch.Tensor:
    # A1111 compatibility: it converts one timestep at a time and rebuilds a float32 tensor.
    values = [float(model_schedule.t_to_sigma(t)) for t in timesteps] + [0.0]
    return torch.tensor(values, dtype=torch.float32)


def _t_range(sigma_min: float, sigma_max: float, model_schedule: ModelSchedule) -> tuple[float, float]:
    start = model_schedule.sigma_to_t(torch.tensor(sigma_max))
    end = model_schedule.sigma_to_t(torch.tensor(sigma_min))
    return float(start), float(end)


def sgm_uniform(n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule) -> torch.Tensor:
    """n+1 evenly spaced timesteps with the last dropped (Stability's "sgm_uniform" discretisation)."""
    start, end = _t_range(sigma_min, sigma_max, model_schedule)
    return _timesteps_to_sigmas(torch.linspace(start, end, n + 1)[:-1], model_schedule)


def normal(n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule) -> torch.Tensor:
    """n evenly spaced timesteps from sigma_max's to sigma_min's, both ends included."""
    start, end = _t_range(sigma_min, sigma_max, model_schedule)
    return _timesteps_to_sigmas(torch.linspace(start, end, n), model_schedule)


def simple(n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule) -> torch.Tensor:
    """Every (T/n)-th training sigma, counted down from the top."""
    table = model_schedule.sigmas
    stride = len(table) / n
    values = [float(table[-(1 + int(i * stride))]) for i in range(n)] + [0.0]
    return torch.tensor(values, dtype=torch.float32)


def ddim(n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule) -> torch.Tensor:
    """Training sigmas at timesteps 1, 1+T//n, 1+2T//n, ... (uniform DDIM spacing), descending."""
    table = model_schedule.sigmas
    stride = max(len(table) // n, 1)
    # A1111 compatibility: counting from timestep 1 while t < T can give more than n sigmas (n=7: 8).
    values = [float(table[t]) for t in range(1, len(table), stride)][::-1] + [0.0]
    return torch.tensor(values, dtype=torch.float32)


def kl_optimal(
    n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule | None = None
) -> torch.Tensor:
    """Evenly spaced in arctan(sigma) ("Align Your Steps" KL-optimal schedule)."""
    alpha_min, alpha_max = torch.arctan(torch.tensor(sigma_min)), torch.arctan(torch.tensor(sigma_max))
    step = torch.arange(n + 1) / n
    # A1111 compatibility: n+1 arctan-spaced values, so the last is sigma_min, not 0 (the final step
    # leaves sigma_min of noise), exactly as A1111 1.10 samples with it.
    return torch.tan(step * alpha_min + (1.0 - step) * alpha_max)


def _loglinear_interp(values: np.ndarray, num: int) -> np.ndarray:
    xs = np.linspace(0, 1, len(values))
    ys = np.log(values[::-1])
    return np.exp(np.interp(np.linspace(0, 1, num), xs, ys))[::-1].copy()


def align_your_steps(
    n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule
) -> torch.Tensor:
    """NVIDIA's Align Your Steps table for the model family, log-linearly resampled to n steps."""
    # A1111 compatibility: the table is used as published; sigma_min/sigma_max overrides are ignored.
    table = np.array(AYS_SDXL if model_schedule.is_sdxl else AYS_SD15)
    values = table if n == len(table) else _loglinear_interp(table, n)
    return torch.tensor(np.append(values, 0.0), dtype=torch.float32)


def beta(
    n: int,
    sigma_min: float,
    sigma_max: float,
    model_schedule: ModelSchedule | None = None,
    alpha: float = 0.6,
    beta: float = 0.6,
) -> torch.Tensor:
    """Beta-distribution quantiles of the step ramp (Lee et al. 2024), mapped linearly onto [min, max]."""
    ramp = 1 - np.linspace(0, 1, n)
    # A1111 compatibility: quantiles scale sigma linearly (not the timestep as in the paper/ComfyUI).
    values = [sigma_min + float(stats.beta.ppf(x, alpha, beta)) * (sigma_max - sigma_min) for x in ramp]
    return torch.tensor(values + [0.0], dtype=torch.float32)


def discard_penultimate(sigmas: torch.Tensor) -> torch.Tensor:
    """Drop the next-to-last sigma (DPM2-type samplers overshoot on a tiny last step)."""
    return torch.cat([sigmas[:-2], sigmas[-1:]])


def a1111_timesteps(steps: int, num_train_timesteps: int = 1000) -> torch.Tensor:
    """The training timesteps A1111's DDIM/PLMS/UniPC samplers visit, ascending."""
    # A1111 compatibility: range(0, T, T//steps) + 1, clipped; this has steps+1 entries when T % steps
    # leaves room (steps=7 gives 8) and the samplers then take len-1 steps.
    t = torch.arange(0, num_train_timesteps, num_train_timesteps // steps) + 1
    return t.clip(0, num_train_timesteps - 1)


def ddim_timesteps(n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule) -> torch.Tensor:
    """Sigmas of A1111's DDIM/PLMS timesteps, descending, ending at timestep 1's sigma (no trailing 0)."""
    t = a1111_timesteps(n, len(model_schedule.sigmas))
    return model_schedule.sigmas[t.flip(0)].float()


def _vp_log_alpha(t: torch.Tensor, model_schedule: ModelSchedule) -> torch.Tensor:
    # UniPC's NoiseScheduleVP("discrete"): log(alpha) is piecewise linear in t over the grid k/T, k=1..T.
    total = len(model_schedule.sigmas)
    grid = np.linspace(0.0, 1.0, total + 1)[1:]
    log_alpha = -0.5 * torch.log1p(model_schedule.sigmas.double() ** 2)  # alpha^2 = 1 / (1 + sigma^2)
    return torch.tensor(np.interp(t.double().numpy(), grid, log_alpha.numpy()))


def unipc_time_uniform(
    n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule
) -> torch.Tensor:
    """A1111's UniPC steps: evenly spaced continuous time t in [1, 1/T] on the VP schedule, as sigmas."""
    total = len(model_schedule.sigmas)
    # A1111 compatibility: UniPC takes as many steps as the DDIM timestep list has entries.
    steps = len(a1111_timesteps(n, total))
    t = torch.linspace(1.0, 1.0 / total, steps + 1, dtype=torch.float64)
    return torch.sqrt(torch.expm1(-2 * _vp_log_alpha(t, model_schedule))).float()


def lcm_uniform(n: int, sigma_min: float, sigma_max: float, model_schedule: ModelSchedule) -> torch.Tensor:
    """LCM's steps: evenly spaced over the 50 LCM training timesteps 19, 39, ..., 999, then 0."""
    table = lcm_sigmas(model_schedule)
    # A1111 compatibility: its LCM wrapper spaces timesteps 999..19 evenly and maps them back to table
    # positions, which is an even spacing of positions 49..0 interpolated in log sigma.
    position = torch.linspace(len(table) - 1, 0, n)
    low, high, w = position.floor().long(), position.ceil().long(), position.frac()
    return _append_zero(((1 - w) * table.log()[low] + w * table.log()[high]).exp())


LCM_ORIGINAL_STEPS = 50


def lcm_sigmas(model_schedule: ModelSchedule) -> torch.Tensor:
    """The sigmas of LCM's 50 original timesteps (every 20th training step, ending at T-1), ascending."""
    total = len(model_schedule.sigmas)
    skip = total // LCM_ORIGINAL_STEPS
    return model_schedule.sigmas[total - 1 - skip * torch.arange(LCM_ORIGINAL_STEPS - 1, -1, -1)]
