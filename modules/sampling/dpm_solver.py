"""DPM fast and DPM adaptive: the original noise-prediction DPM-Solver (Lu et al. 2022, arXiv 2206.00927).

Time is t = -log sigma. Steps of order 1, 2 and 3 share the noise prediction at the step start through a
small per-step cache. Both samplers read only the range of ``sigmas`` (first and last positive value,
and for DPM fast the step count), as A1111 passes them ``sigma_min``/``sigma_max``/``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from modules.sampling.samplers import ancestral_step, default_noise_sampler


class _Solver:
    """Noise predictions eps(x, t) from a denoiser, cached per step by name."""

    def __init__(self, model: Callable[..., torch.Tensor], extra_args: dict, x: torch.Tensor) -> None:
        self.model = model
        self.extra_args = extra_args
        self.ones = x.new_ones([x.shape[0]])
        self.cache: dict[str, torch.Tensor] = {}

    def eps(self, key: str, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if key not in self.cache:
            sigma = _sigma(t)
            self.cache[key] = (x - self.model(x, sigma * self.ones, **self.extra_args)) / sigma
        return self.cache[key]

    def step_1(self, x, t, t_next):
        """DPM-Solver-1 (= DDIM): exact integration of the linear part with eps held constant."""
        h = t_next - t
        return x - _sigma(t_next) * h.expm1() * self.eps("eps", x, t)

    def step_2(self, x, t, t_next, r1=1 / 2):
        """DPM-Solver-2: one intermediate evaluation at t + r1 h."""
        h = t_next - t
        eps = self.eps("eps", x, t)
        s1 = t + r1 * h
        u1 = x - _sigma(s1) * (r1 * h).expm1() * eps
        eps_r1 = self.eps("eps_r1", u1, s1)
        return x - _sigma(t_next) * h.expm1() * eps - _sigma(t_next) / (2 * r1) * h.expm1() * (eps_r1 - eps)

    def step_3(self, x, t, t_next, r1=1 / 3, r2=2 / 3):
        """DPM-Solver-3: intermediate evaluations at t + h/3 and t + 2h/3."""
        h = t_next - t
        eps = self.eps("eps", x, t)
        s1, s2 = t + r1 * h, t + r2 * h
        u1 = x - _sigma(s1) * (r1 * h).expm1() * eps
        eps_r1 = self.eps("eps_r1", u1, s1)
        phi = (r2 * h).expm1() / (r2 * h) - 1
        u2 = x - _sigma(s2) * (r2 * h).expm1() * eps - _sigma(s2) * (r2 / r1) * phi * (eps_r1 - eps)
        eps_r2 = self.eps("eps_r2", u2, s2)
        return (
            x - _sigma(t_next) * h.expm1() * eps - _sigma(t_next) / r2 * (h.expm1() / h - 1) * (eps_r2 - eps)
        )


def _t(sigma):
    return -torch.as_tensor(sigma).log()


def _sigma(t):
    return (-t).exp()


def _sigma_range(sigmas: torch.Tensor) -> tuple[float, float]:
    positive = sigmas[sigmas > 0]
    if len(positive) == 0:
        raise ValueError("sigma_min and sigma_max must not be 0")
    # A1111 compatibility: the last sigma is 0, which DPM-Solver cannot reach, so it stops at the one before.
    return float(positive[-1]), float(sigmas[0])


def _noisy_target(t, t_next, t_end, eta):
    """Where a step lands before noise is added, and how much noise brings it back to t_next."""
    if not eta:
        return t_next, 0.0
    sigma_down, _ = ancestral_step(_sigma(t), _sigma(t_next), eta)
    t_down = torch.minimum(t_end, _t(sigma_down))
    return t_down, (_sigma(t_next) ** 2 - _sigma(t_down) ** 2) ** 0.5


def _fast_orders(n: int) -> list[int]:
    """Order-3 steps with the remainder at the end, about n model calls in total (Lu et al. sec. 3.4)."""
    m = math.floor(n / 3) + 1
    return [3] * (m - 2) + [2, 1] if n % 3 == 0 else [3] * (m - 1) + [n % 3]


@torch.no_grad()
def sample_dpm_fast(
    model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, eta=0.0, s_noise=1.0
):
    """DPM-Solver-fast: fixed steps uniform in t, mostly third order, about len(sigmas)-1 model calls."""
    sigma_min, sigma_max = _sigma_range(sigmas)
    n = len(sigmas) - 1
    noise_sampler = noise_sampler or default_noise_sampler(x)
    t_start, t_end = _t(torch.tensor(sigma_max)), _t(torch.tensor(sigma_min))
    orders = _fast_orders(n)
    ts = torch.linspace(t_start, t_end, math.floor(n / 3) + 2, device=x.device)
    for i, order in enumerate(orders):
        solver = _Solver(model, extra_args or {}, x)
        t, t_next = ts[i], ts[i + 1]
        t_down, sigma_up = _noisy_target(t, t_next, t_end, eta)
        eps = solver.eps("eps", x, t)
        if callback is not None:
            callback(
                {
                    "x": x,
                    "i": i,
                    "t": t,
                    "t_up": t,
                    "sigma": _sigma(t),
                    "sigma_hat": _sigma(t),
                    "denoised": x - _sigma(t) * eps,
                }
            )
        x = (solver.step_1, solver.step_2, solver.step_3)[order - 1](x, t, t_down)
        # A1111 compatibility: noise is drawn on every step (times 0 when eta is 0), as k-diffusion does.
        x = x + sigma_up * s_noise * noise_sampler(_sigma(t), _sigma(t_next))
    return x


class _StepSizeController:
    """PID controller on the local error estimate (Söderlind); accepts a step when the factor is large enough."""

    def __init__(self, h, pcoeff, icoeff, dcoeff, order, accept_safety, eps=1e-8) -> None:
        self.h = h
        self.b = ((pcoeff + icoeff + dcoeff) / order, -(pcoeff + 2 * dcoeff) / order, dcoeff / order)
        self.accept_safety = accept_safety
        self.eps = eps
        self.errors: list[float] = []

    def propose(self, error) -> bool:
        inverse = 1 / (float(error) + self.eps)
        if not self.errors:
            self.errors = [inverse] * 3
        self.errors[0] = inverse
        factor = self.errors[0] ** self.b[0] * self.errors[1] ** self.b[1] * self.errors[2] ** self.b[2]
        factor = 1 + math.atan(factor - 1)
        accept = factor >= self.accept_safety
        if accept:
            self.errors[2], self.errors[1] = self.errors[1], self.errors[0]
        self.h *= factor
        return accept


@torch.no_grad()
def sample_dpm_adaptive(
    model,
    x,
    sigmas,
    extra_args=None,
    callback=None,
    disable=None,
    noise_sampler=None,
    order=3,
    rtol=0.05,
    atol=0.0078,
    h_init=0.05,
    pcoeff=0.0,
    icoeff=1.0,
    dcoeff=0.0,
    accept_safety=0.81,
    eta=0.0,
    s_noise=1.0,
):
    """DPM-Solver-12/23 with adaptive step size: the order-(k-1) and order-k results estimate the error."""
    if order not in {2, 3}:
        raise ValueError("order should be 2 or 3")
    sigma_min, sigma_max = _sigma_range(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    s, t_end = _t(torch.tensor(sigma_max)), _t(torch.tensor(sigma_min))
    controller = _StepSizeController(
        abs(h_init), pcoeff, icoeff, dcoeff, 1.5 if eta else order, accept_safety
    )
    atol, rtol = torch.tensor(atol), torch.tensor(rtol)
    x_prev, steps = x, 0
    while s < t_end - 1e-5:
        solver = _Solver(model, extra_args or {}, x)
        t = torch.minimum(t_end, s + controller.h)
        t_down, sigma_up = _noisy_target(s, t, t_end, eta)
        denoised = x - _sigma(s) * solver.eps("eps", x, s)
        if order == 2:
            x_low, x_high = solver.step_1(x, s, t_down), solver.step_2(x, s, t_down)
        else:
            x_low, x_high = solver.step_2(x, s, t_down, r1=1 / 3), solver.step_3(x, s, t_down)
        delta = torch.maximum(atol, rtol * torch.maximum(x_low.abs(), x_prev.abs()))
        error = torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5
        if controller.propose(error):
            x_prev = x_low
            x = x_high + sigma_up * s_noise * noise_sampler(_sigma(s), _sigma(t))
            s = t
        steps += 1
        if callback is not None:
            callback(
                {
                    "x": x,
                    "i": steps - 1,
                    "t": s,
                    "sigma": _sigma(s),
                    "sigma_hat": _sigma(s),
                    "denoised": denoised,
                    "error": error,
                }
            )
    return x
