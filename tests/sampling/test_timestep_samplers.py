"""DDIM, PLMS, UniPC and LCM (sigma space) equal diffusers' schedulers stepping the same eps model."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, LCMScheduler, PNDMScheduler, UniPCMultistepScheduler
from sampling_helpers import SHAPE

from modules.sampling import samplers, sigmas, timestep_samplers
from modules.sampling.model_wrap import DiscreteDenoiser

SD_BETAS = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1}


def _at(t, n=SHAPE[0]) -> torch.Tensor:
    return torch.full((n,), float(t), dtype=torch.float64)


def _use_float64(scheduler, alphas_cumprod):
    scheduler.alphas_cumprod = alphas_cumprod.clone()
    scheduler.final_alpha_cumprod = alphas_cumprod[0]
    return scheduler


def _vp_start(noise, sigma_list):
    return noise * (1 + sigma_list[0] ** 2) ** 0.5


@pytest.mark.parametrize("eta", [0.0, 0.6])
def test_ddim_matches_diffusers(eta, alphas_cumprod, schedule64, eps_model, start_noise):
    scheduler = _use_float64(
        DDIMScheduler(clip_sample=False, set_alpha_to_one=False, **SD_BETAS), alphas_cumprod
    )
    scheduler.set_timesteps(10)
    generator = torch.Generator().manual_seed(4)
    noises = [torch.randn(SHAPE, dtype=torch.float64, generator=generator) for _ in range(10)]
    x = start_noise.clone()
    for i, t in enumerate(scheduler.timesteps):
        x = scheduler.step(eps_model(x, _at(t)), t, x, eta=eta, variance_noise=noises[i]).prev_sample
    # diffusers' last step lands on alphas_cumprod[0], i.e. timestep 0's sigma.
    sigma_list = schedule64.sigmas[scheduler.timesteps.tolist() + [0]]
    stream = iter(noises)
    ours = timestep_samplers.sample_ddim(
        DiscreteDenoiser(eps_model, schedule64), _vp_start(start_noise, sigma_list), sigma_list, eta=eta,
        noise_sampler=lambda s, s_next: next(stream),
    )  # fmt: skip
    torch.testing.assert_close(ours, x, rtol=1e-9, atol=1e-9)


def test_plms_matches_diffusers(alphas_cumprod, schedule64, eps_model, start_noise):
    scheduler = _use_float64(
        PNDMScheduler(skip_prk_steps=True, set_alpha_to_one=False, **SD_BETAS), alphas_cumprod
    )
    scheduler.set_timesteps(10)
    x = start_noise.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(eps_model(x, _at(t)), t, x).prev_sample
    visited = sorted(set(scheduler.timesteps.tolist()), reverse=True) + [0]
    sigma_list = schedule64.sigmas[visited]
    ours = timestep_samplers.sample_plms(
        DiscreteDenoiser(eps_model, schedule64), _vp_start(start_noise, sigma_list), sigma_list
    )
    torch.testing.assert_close(ours, x, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_unipc_matches_diffusers(order, variant, schedule64, eps_model, start_noise):
    denoiser = DiscreteDenoiser(eps_model, schedule64)
    sigma_list = sigmas.unipc_time_uniform(8, 0, 0, schedule64).double()
    scheduler = UniPCMultistepScheduler(
        solver_order=order, solver_type=variant, lower_order_final=True, **SD_BETAS
    )
    scheduler.set_timesteps(len(sigma_list) - 1)
    scheduler.sigmas = sigma_list.clone()  # same sigmas on both sides; diffusers reads them per step
    scheduler.timesteps = torch.arange(len(sigma_list) - 1, 0, -1)
    x = start_noise.clone()
    for i, t in enumerate(scheduler.timesteps):
        s = sigma_list[i]
        x_ve = x * (1 + s**2) ** 0.5
        eps = (x_ve - denoiser(x_ve, s.expand(SHAPE[0]))) / s
        x = scheduler.step(eps, t, x).prev_sample
    ours = timestep_samplers.sample_unipc(
        denoiser, _vp_start(start_noise, sigma_list), sigma_list, order=order, variant=variant
    )
    torch.testing.assert_close(ours, x, rtol=1e-9, atol=1e-9)


def test_unipc_rejects_unknown_variant(denoiser, start_noise):
    with pytest.raises(ValueError, match="variant"):
        timestep_samplers.sample_unipc(denoiser, start_noise, torch.tensor([2.0, 1.0, 0.5]), variant="bh3")


def test_lcm_matches_diffusers(alphas_cumprod, schedule64, eps_model, start_noise):
    # A huge timestep scaling makes diffusers' boundary condition the identity (c_skip 0, c_out 1), so
    # only the sampling loop is compared.
    scheduler = LCMScheduler(timestep_scaling=1e9, set_alpha_to_one=False, **SD_BETAS)
    _use_float64(scheduler, alphas_cumprod)
    scheduler.set_timesteps(4)
    generator = torch.Generator().manual_seed(6)
    x = start_noise.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(eps_model(x, _at(t)), t, x, generator=generator).prev_sample
    sigma_list = torch.cat([schedule64.sigmas[scheduler.timesteps], torch.zeros(1, dtype=torch.float64)])
    ours_generator = torch.Generator().manual_seed(6)
    ours = samplers.sample_lcm(
        DiscreteDenoiser(eps_model, schedule64),
        start_noise * (1 + sigma_list[0] ** 2) ** 0.5,
        sigma_list,
        noise_sampler=lambda s, s_next: torch.randn(SHAPE, generator=ours_generator, dtype=torch.float64),
    )
    torch.testing.assert_close(ours, x, rtol=1e-9, atol=1e-9)


def test_timestep_samplers_return_vp_scale(denoiser, start_noise):
    """Ending at a positive sigma, the result is divided by sqrt(1 + sigma^2), as A1111 returns it."""
    sigma_list = torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64)
    calls = []

    def recording(x, sigma, **kw):
        calls.append(x)
        return denoiser(x, sigma)

    out = timestep_samplers.sample_ddim(recording, start_noise * 3, sigma_list)
    last_denoised = denoiser(calls[-1], sigma_list[1].expand(2))
    eps = (calls[-1] - last_denoised) / sigma_list[1]
    expected = (last_denoised + 0.5 * eps) / (1 + 0.25) ** 0.5
    torch.testing.assert_close(out, expected)
