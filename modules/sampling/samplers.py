"""The k-diffusion family of samplers, one short function each, written from the papers.

Every sampler has the signature
``(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, **churn)``:
``model(x, sigma, **extra_args)`` returns the denoised latent, ``x`` starts at noise level ``sigmas[0]``
(variance-exploding scale) and the loop walks down ``sigmas``. Fresh noise only ever comes from
``noise_sampler(sigma, sigma_next)`` so callers decide the seeds. ``callback`` gets a dict with
``x, i, sigma, sigma_hat, denoised`` once per step, as k-diffusion's callbacks do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from scipy import integrate

Model = Callable[..., torch.Tensor]
NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict[str, Any]], None] | None


def default_noise_sampler(x: torch.Tensor) -> NoiseSampler:
    """Unseeded Gaussian noise shaped like x (callers that care about seeds pass their own)."""
    return lambda sigma, sigma_next: torch.randn_like(x)


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE derivative dx/dsigma = (x - D(x)) / sigma (Karras et al. eq. 3)."""
    return (x - denoised) / _per_sample(sigma, x)


def _per_sample(value: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor | float:
    if isinstance(value, torch.Tensor) and value.ndim:
        return value.reshape(value.shape + (1,) * (x.ndim - value.ndim))
    return value


def ancestral_step(sigma: torch.Tensor, sigma_next: torch.Tensor, eta: float = 1.0) -> tuple[Any, Any]:
    """Split a step to sigma_next into a deterministic step down to sigma_down plus fresh noise sigma_up.

    sigma_down^2 + sigma_up^2 = sigma_next^2; eta = 1 gives DDPM's posterior variance, 0 no noise.
    """
    if not eta:
        return sigma_next, 0.0
    posterior = (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5
    sigma_up = min(sigma_next, eta * posterior)
    return (sigma_next**2 - sigma_up**2) ** 0.5, sigma_up


def _churn(
    x: torch.Tensor, sigma: torch.Tensor, steps: int, noise: torch.Tensor, churn: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Karras et al. Algorithm 2, lines 4-6: raise the noise level by gamma before the step."""
    s_churn, s_tmin, s_tmax, s_noise = churn
    gamma = min(s_churn / steps, 2**0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
    sigma_hat = sigma * (gamma + 1)
    if gamma > 0:
        x = x + noise * s_noise * (sigma_hat**2 - sigma**2) ** 0.5
    return x, sigma_hat


def _report(callback: Callback, x, i, sigma, sigma_hat, denoised) -> None:
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})


@torch.no_grad()
def sample_euler(
    model,
    x,
    sigmas,
    extra_args=None,
    callback=None,
    disable=None,
    noise_sampler=None,
    s_churn=0.0,
    s_tmin=0.0,
    s_tmax=float("inf"),
    s_noise=1.0,
):
    """Karras et al. (2022) Algorithm 2 with Euler steps (optional churn: s_churn/s_tmin/s_tmax/s_noise)."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    churn = (s_churn, s_tmin, s_tmax, s_noise)
    for i in range(len(sigmas) - 1):
        # A1111 compatibility: churn noise is drawn every step, used or not, keeping the seeded stream aligned.
        x, sigma_hat = _churn(x, sigmas[i], len(sigmas) - 1, noise_sampler(sigmas[i], sigmas[i + 1]), churn)
        denoised = model(x, sigma_hat * ones, **extra_args)
        _report(callback, x, i, sigmas[i], sigma_hat, denoised)
        x = x + to_d(x, sigma_hat, denoised) * (sigmas[i + 1] - sigma_hat)
    return x


@torch.no_grad()
def sample_euler_ancestral(
    model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, eta=1.0, s_noise=1.0
):
    """Euler steps down to sigma_down, then fresh noise sigma_up (ancestral sampling)."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


@torch.no_grad()
def sample_heun(
    model,
    x,
    sigmas,
    extra_args=None,
    callback=None,
    disable=None,
    noise_sampler=None,
    s_churn=0.0,
    s_tmin=0.0,
    s_tmax=float("inf"),
    s_noise=1.0,
):
    """Karras et al. (2022) Algorithm 2: Heun's second-order correction, Euler on the last step to 0."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    churn = (s_churn, s_tmin, s_tmax, s_noise)
    for i in range(len(sigmas) - 1):
        x, sigma_hat = _churn(x, sigmas[i], len(sigmas) - 1, noise_sampler(sigmas[i], sigmas[i + 1]), churn)
        denoised = model(x, sigma_hat * ones, **extra_args)
        _report(callback, x, i, sigmas[i], sigma_hat, denoised)
        d = to_d(x, sigma_hat, denoised)
        dt = sigmas[i + 1] - sigma_hat
        if sigmas[i + 1] == 0:
            x = x + d * dt
            continue
        x_euler = x + d * dt
        d_next = to_d(x_euler, sigmas[i + 1], model(x_euler, sigmas[i + 1] * ones, **extra_args))
        x = x + (d + d_next) / 2 * dt
    return x


def _dpm2_step(model, x, d, sigma, sigma_to, ones, extra_args):
    """DPM-Solver-2 style midpoint step: slope at the geometric mean of the two sigmas."""
    sigma_mid = sigma.log().lerp(sigma_to.log(), 0.5).exp()
    x_mid = x + d * (sigma_mid - sigma)
    d_mid = to_d(x_mid, sigma_mid, model(x_mid, sigma_mid * ones, **extra_args))
    return x + d_mid * (sigma_to - sigma)


@torch.no_grad()
def sample_dpm_2(
    model,
    x,
    sigmas,
    extra_args=None,
    callback=None,
    disable=None,
    noise_sampler=None,
    s_churn=0.0,
    s_tmin=0.0,
    s_tmax=float("inf"),
    s_noise=1.0,
):
    """Karras et al. Algorithm 2 with a DPM-Solver-2 midpoint step in place of Heun's."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    churn = (s_churn, s_tmin, s_tmax, s_noise)
    for i in range(len(sigmas) - 1):
        x, sigma_hat = _churn(x, sigmas[i], len(sigmas) - 1, noise_sampler(sigmas[i], sigmas[i + 1]), churn)
        denoised = model(x, sigma_hat * ones, **extra_args)
        _report(callback, x, i, sigmas[i], sigma_hat, denoised)
        d = to_d(x, sigma_hat, denoised)
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigma_hat)
        else:
            x = _dpm2_step(model, x, d, sigma_hat, sigmas[i + 1], ones, extra_args)
    return x


@torch.no_grad()
def sample_dpm_2_ancestral(
    model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, eta=1.0, s_noise=1.0
):
    """DPM-Solver-2 midpoint steps down to sigma_down, then fresh noise sigma_up."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            x = _dpm2_step(model, x, d, sigmas[i], sigma_down, ones, extra_args)
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def lms_coefficient(order: int, t: Any, i: int, j: int) -> float:
    """Integral over [t_i, t_{i+1}] of the Lagrange basis polynomial for node t_{i-j} (Adams-Bashforth)."""
    if order - 1 > i:
        raise ValueError(f"Order {order} too high for step {i}")

    def basis(tau: float) -> float:
        product = 1.0
        for k in range(order):
            if k != j:
                product *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return product

    # A1111/k-diffusion compatibility: the same numerical quadrature and tolerance, so results agree.
    return integrate.quad(basis, t[i], t[i + 1], epsrel=1e-4)[0]


@torch.no_grad()
def sample_lms(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, order=4):
    """Linear multistep: combine the last `order` ODE slopes with Lagrange-interpolation weights."""
    extra_args = extra_args or {}
    ones = x.new_ones([x.shape[0]])
    nodes = sigmas.detach().cpu().numpy()
    slopes: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        slopes = (slopes + [to_d(x, sigmas[i], denoised)])[-order:]
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        current = min(i + 1, order)
        coefficients = [lms_coefficient(current, nodes, i, j) for j in range(current)]
        x = x + sum(c * d for c, d in zip(coefficients, reversed(slopes), strict=False))
    return x


def _t(sigma):
    """DPM-Solver's time variable: t = -log sigma (the half log-SNR, lambda)."""
    return -sigma.log()


def _sigma(t):
    return (-t).exp()


@torch.no_grad()
def sample_dpmpp_2s_ancestral(
    model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, eta=1.0, s_noise=1.0
):
    """DPM-Solver++(2S) single-step second order, ancestral (Lu et al. 2022, Algorithm 1)."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            t, t_next = _t(sigmas[i]), _t(sigma_down)
            h = t_next - t
            s = t + h / 2
            x_mid = (_sigma(s) / _sigma(t)) * x - (-h / 2).expm1() * denoised
            denoised_mid = model(x_mid, _sigma(s) * ones, **extra_args)
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * denoised_mid
        if sigmas[i + 1] > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


@torch.no_grad()
def sample_dpmpp_sde(
    model,
    x,
    sigmas,
    extra_args=None,
    callback=None,
    disable=None,
    noise_sampler=None,
    eta=1.0,
    s_noise=1.0,
    r=0.5,
):
    """DPM-Solver++ stochastic: a noisy half step to s = t + r h, then a noisy full step with the
    first-order difference of the two denoised estimates. Needs a Brownian noise_sampler to converge.
    """
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
            continue
        t, t_next = _t(sigmas[i]), _t(sigmas[i + 1])
        s = t + (t_next - t) * r
        x_s = _ancestral_exp_step(x, denoised, t, s, eta, s_noise, noise_sampler)
        denoised_s = model(x_s, _sigma(s) * ones, **extra_args)
        weight = 1 / (2 * r)
        denoised_mix = (1 - weight) * denoised + weight * denoised_s
        x = _ancestral_exp_step(x, denoised_mix, t, t_next, eta, s_noise, noise_sampler)
    return x


def _ancestral_exp_step(x, denoised, t, t_to, eta, s_noise, noise_sampler):
    """First-order DPM-Solver++ step from t towards t_to, landing on sigma_down and re-noising to t_to."""
    sigma_down, sigma_up = ancestral_step(_sigma(t), _sigma(t_to), eta)
    t_down = _t(sigma_down)
    x = (_sigma(t_down) / _sigma(t)) * x - (t - t_down).expm1() * denoised
    return x + noise_sampler(_sigma(t), _sigma(t_to)) * s_noise * sigma_up


@torch.no_grad()
def sample_dpmpp_2m(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """DPM-Solver++(2M): multistep second order from the last two denoised estimates (Lu et al. 2022)."""
    extra_args = extra_args or {}
    ones = x.new_ones([x.shape[0]])
    previous = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        t, t_next = _t(sigmas[i]), _t(sigmas[i + 1])
        h = t_next - t
        estimate = denoised
        if previous is not None and sigmas[i + 1] != 0:
            r = (t - _t(sigmas[i - 1])) / h
            estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
        x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * estimate
        previous = denoised
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(
    model,
    x,
    sigmas,
    extra_args=None,
    callback=None,
    disable=None,
    noise_sampler=None,
    eta=1.0,
    s_noise=1.0,
    solver_type="midpoint",
):
    """DPM-Solver++(2M) SDE: the exponential-integrator data-prediction SDE step with a second-order
    correction from the previous denoised estimate (midpoint or Heun flavour)."""
    if solver_type not in {"heun", "midpoint"}:
        raise ValueError("solver_type must be 'heun' or 'midpoint'")
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    previous, h_last = None, None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        h = None
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = _t(sigmas[i + 1]) - _t(sigmas[i])
            eta_h = eta * h
            decay = (-h - eta_h).expm1().neg()
            x = sigmas[i + 1] / sigmas[i] * (-eta_h).exp() * x + decay * denoised
            if previous is not None:
                r = h_last / h
                factor = decay / (-h - eta_h) + 1 if solver_type == "heun" else 0.5 * decay
                x = x + factor * (1 / r) * (denoised - previous)
            if eta:
                x = (
                    x
                    + noise_sampler(sigmas[i], sigmas[i + 1])
                    * sigmas[i + 1]
                    * (-2 * eta_h).expm1().neg().sqrt()
                    * s_noise
                )
        previous, h_last = denoised, h
    return x


@torch.no_grad()
def sample_dpmpp_3m_sde(
    model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, eta=1.0, s_noise=1.0
):
    """DPM-Solver++(3M) SDE: like 2M SDE with a third-order correction from two previous estimates."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    denoised_1 = denoised_2 = h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        h = None
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = _t(sigmas[i + 1]) - _t(sigmas[i])
            h_eta = h * (eta + 1)
            x = torch.exp(-h_eta) * x + (-h_eta).expm1().neg() * denoised
            phi_2 = h_eta.neg().expm1() / h_eta + 1
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + phi_2 * d1 - (phi_2 / h_eta - 0.5) * d2
            elif h_1 is not None:
                x = x + phi_2 * ((denoised - denoised_1) / (h_1 / h))
            if eta:
                x = (
                    x
                    + noise_sampler(sigmas[i], sigmas[i + 1])
                    * sigmas[i + 1]
                    * (-2 * h * eta).expm1().neg().sqrt()
                    * s_noise
                )
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


@torch.no_grad()
def sample_lcm(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """Latent Consistency Model sampling: jump to the denoised estimate, re-noise to the next sigma."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * ones, **extra_args)
        _report(callback, x, i, sigmas[i], sigmas[i], denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * noise_sampler(sigmas[i], sigmas[i + 1])
    return x


def restart_plan(sigmas: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """A1111's automatic Restart plan: (the main sigmas, every (sigma, sigma_next) Heun step in order)."""
    from modules.sampling.sigmas import karras

    steps = len(sigmas) - 1
    restarts = {}
    if steps >= 20:
        restart_steps, restart_times = (steps // 4, 2) if steps >= 36 else (9, 1)
        # A1111 compatibility: the main schedule is rebuilt as Karras over the given range, whatever it was.
        sigmas = karras(steps - restart_steps * restart_times, sigmas[-2].item(), sigmas[0].item()).to(
            sigmas.device
        )
        restarts = {0.1: (restart_steps + 1, restart_times, 2.0)}
    restarts = {int(torch.argmin(abs(sigmas - key))): value for key, value in restarts.items()}
    plan = []
    for i in range(len(sigmas) - 1):
        plan.append((sigmas[i], sigmas[i + 1]))
        if i + 1 not in restarts:
            continue
        restart_steps, restart_times, restart_max = restarts[i + 1]
        max_index = int(torch.argmin(abs(sigmas - restart_max)))
        if max_index < i + 1:
            # A1111 compatibility: the restart segments live on the schedule's device, as A1111 builds them.
            segment = karras(restart_steps, sigmas[i + 1].item(), sigmas[max_index].item())[:-1]
            segment = segment.to(sigmas.device)
            plan += list(zip(segment[:-1], segment[1:], strict=False)) * restart_times
    return sigmas, plan


@torch.no_grad()
def sample_restart(
    model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, s_noise=1.0
):
    """Restart sampling (Xu et al. 2023): Heun steps, with jumps back up in noise (forward re-noising)
    from about sigma 0.1 to 2 and fresh Heun passes over that interval."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    _, plan = restart_plan(sigmas)
    last = None
    for i, (sigma, sigma_next) in enumerate(plan):
        if last is not None and last < sigma:
            x = x + noise_sampler(last, sigma) * s_noise * (sigma**2 - last**2) ** 0.5
        denoised = model(x, sigma * ones, **extra_args)
        _report(callback, x, i, sigma_next, sigma, denoised)
        d = to_d(x, sigma, denoised)
        dt = sigma_next - sigma
        if sigma_next == 0:
            x = x + d * dt
        else:
            x_euler = x + d * dt
            d_next = to_d(x_euler, sigma_next, model(x_euler, sigma_next * ones, **extra_args))
            x = x + (d + d_next) / 2 * dt
        last = sigma_next
    return x
