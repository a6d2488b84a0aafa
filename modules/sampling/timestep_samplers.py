"""DDIM, PLMS and UniPC, written in sigma space with the same signature as the k-diffusion samplers.

A1111 runs these on the variance-preserving latent at training timesteps. With ``a = 1 / (1 + sigma^2)``
the VP latent is ``x * sqrt(a)``, ``eps = (x - denoised) / sigma``, and every update below is the paper's
update divided by ``sqrt(a_next)``. They start from VP noise (``x = noise * sqrt(1 + sigma_0^2)``, see
the registry's ``initial_noise_scale``) and stop at their last sigma, which is not 0 for A1111's
timesteps; the result is returned on the VP scale (``x * sqrt(a_last)``) as A1111 returns it.
"""

from __future__ import annotations

import torch

from modules.sampling.samplers import default_noise_sampler


def _eps(x, sigma, denoised):
    return (x - denoised) / sigma


def _to_vp(x, sigma):
    # The paper's samplers return the VP latent at their final timestep; at sigma 0 both scales agree.
    return x / (1 + sigma**2) ** 0.5


def _report(callback, x, i, sigma, denoised):
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})


@torch.no_grad()
def sample_ddim(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, eta=0.0):
    """DDIM (Song et al. 2021, eq. 12); eta scales the posterior noise (1 is DDPM-like)."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or default_noise_sampler(x)
    ones = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * ones, **extra_args)
        eps = _eps(x, sigma, denoised)
        a, a_next = 1 / (1 + sigma**2), 1 / (1 + sigma_next**2)
        noise_std = eta * ((1 - a_next) / (1 - a) * (1 - a / a_next)) ** 0.5
        x = denoised + ((1 - a_next - noise_std**2) / a_next) ** 0.5 * eps
        if eta:
            x = x + noise_std / a_next**0.5 * noise_sampler(sigma, sigma_next)
        _report(callback, x, i, sigma, denoised)
    return _to_vp(x, sigmas[-1])


# Adams-Bashforth weights for the newest-first noise predictions, orders 2 to 4.
_ADAMS_BASHFORTH = {
    2: (3 / 2, -1 / 2),
    3: (23 / 12, -16 / 12, 5 / 12),
    4: (55 / 24, -59 / 24, 37 / 24, -9 / 24),
}


@torch.no_grad()
def sample_plms(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """PLMS / PNDM (Liu et al. 2022): a pseudo improved-Euler first step, then Adams-Bashforth on eps."""
    extra_args = extra_args or {}
    ones = x.new_ones([x.shape[0]])
    history: list[torch.Tensor] = []  # newest first, at most 3 previous eps
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        eps = _eps(x, sigma, model(x, sigma * ones, **extra_args))
        if not history:
            x_trial = x + (sigma_next - sigma) * eps
            eps_next = _eps(x_trial, sigma_next, model(x_trial, sigma_next * ones, **extra_args))
            eps_prime = (eps + eps_next) / 2
        else:
            weights = _ADAMS_BASHFORTH[len(history) + 1]
            eps_prime = sum(w * e for w, e in zip(weights, [eps, *history], strict=True))
        denoised = x - sigma * eps_prime
        x = denoised + sigma_next * eps_prime
        history = [eps, *history][:3]
        _report(callback, x, i, sigma, denoised)
    return _to_vp(x, sigmas[-1])


def _unipc_coefficients(rks: torch.Tensor, hh: torch.Tensor, order: int, variant: str):
    """UniPC's linear system R rho = b / B(h) (Zhao et al. 2023, Algorithm 2/3) for data prediction."""
    h_phi_1 = torch.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    b_h = hh if variant == "bh1" else torch.expm1(hh)
    rows, b, factorial = [], [], 1
    for k in range(1, order + 1):
        rows.append(rks ** (k - 1))
        b.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    return torch.stack(rows), torch.stack(b), h_phi_1, b_h


class _UniPC:
    """State of the multistep predictor-corrector: previous denoised estimates and their sigmas."""

    def __init__(self, order: int, variant: str) -> None:
        if variant not in {"bh1", "bh2"}:
            raise ValueError("variant must be 'bh1' or 'bh2'")
        self.order = order
        self.variant = variant
        self.denoised: list[torch.Tensor] = []
        self.sigmas: list[torch.Tensor] = []

    def _differences(self, sigma_to, order):
        lam = lambda s: -torch.log(s)  # noqa: E731 - half log-SNR in VE terms
        m0, s0 = self.denoised[-1], self.sigmas[-1]
        h = lam(sigma_to) - lam(s0)
        rks, d1s = [], []
        for k in range(1, order):
            rk = (lam(self.sigmas[-1 - k]) - lam(s0)) / h
            rks.append(rk)
            d1s.append((self.denoised[-1 - k] - m0) / rk)
        rks.append(torch.ones_like(h))
        return h, torch.stack(rks), d1s

    def predict(self, x, sigma_to, order):
        """UniP-p: the order-p explicit prediction of x at sigma_to."""
        h, rks, d1s = self._differences(sigma_to, order)
        r, b, h_phi_1, b_h = _unipc_coefficients(rks, -h, order, self.variant)
        x_next = sigma_to / self.sigmas[-1] * x - h_phi_1 * self.denoised[-1]
        if d1s:
            # UniPC's choice: order 2 uses the fixed weight 1/2 rather than solving the 1x1 system.
            rhos = torch.tensor([0.5]) if order == 2 else torch.linalg.solve(r[:-1, :-1], b[:-1])
            x_next = x_next - b_h * sum(rho * d for rho, d in zip(rhos, d1s, strict=True))
        return x_next

    def correct(self, x_start, sigma_to, denoised_to, order):
        """UniC-p: re-do the step from x_start using the model's estimate at the predicted point."""
        h, rks, d1s = self._differences(sigma_to, order)
        r, b, h_phi_1, b_h = _unipc_coefficients(rks, -h, order, self.variant)
        rhos = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(r, b)
        x_next = sigma_to / self.sigmas[-1] * x_start - h_phi_1 * self.denoised[-1]
        correction = sum(rho * d for rho, d in zip(rhos[:-1], d1s, strict=True)) if d1s else 0
        return x_next - b_h * (correction + rhos[-1] * (denoised_to - self.denoised[-1]))

    def remember(self, denoised, sigma):
        self.denoised = (self.denoised + [denoised])[-self.order :]
        self.sigmas = (self.sigmas + [sigma])[-self.order :]


@torch.no_grad()
def sample_unipc(
    model,
    x,
    sigmas,
    extra_args=None,
    callback=None,
    disable=None,
    noise_sampler=None,
    order=3,
    variant="bh1",
    lower_order_final=True,
):
    """UniPC multistep (Zhao et al. 2023), data prediction, A1111's defaults: order 3, B(h) variant bh1.

    The model is evaluated once per step, at the predicted point; that estimate corrects the step just
    taken (UniC) and feeds the next prediction (UniP). The last step is predicted only.
    """
    extra_args = extra_args or {}
    ones = x.new_ones([x.shape[0]])
    steps = len(sigmas) - 1
    # Orders above the step count have too few previous points; A1111's UniPC refuses them.
    order = min(order, steps)
    state = _UniPC(order, variant)
    denoised = model(x, sigmas[0] * ones, **extra_args)
    state.remember(denoised, sigmas[0])
    for i in range(steps):
        # A1111 compatibility: warm-up steps use orders 1..order-1 untouched by lower_order_final.
        final_order = min(order, steps - i) if lower_order_final else order
        step_order = i + 1 if i + 1 < order else final_order
        x_start = x
        x = state.predict(x_start, sigmas[i + 1], step_order)
        if i + 1 < steps:
            denoised_next = model(x, sigmas[i + 1] * ones, **extra_args)
            x = state.correct(x_start, sigmas[i + 1], denoised_next, step_order)
            state.remember(denoised_next, sigmas[i + 1])
        _report(callback, x, i, sigmas[i], state.denoised[-1])
    return _to_vp(x, sigmas[-1])
