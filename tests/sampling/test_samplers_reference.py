"""Each k-diffusion-family sampler equals k-diffusion 0.1.1's on the same sigmas, model and noise."""

from __future__ import annotations

import inspect
import types

import pytest
import torch
from kdiffusion_oracle import kdiffusion_sampling
from sampling_helpers import SeededNoise

from modules.sampling import dpm_solver, samplers, sigmas

PAIRS = [
    ("sample_euler", samplers.sample_euler),
    ("sample_euler_ancestral", samplers.sample_euler_ancestral),
    ("sample_heun", samplers.sample_heun),
    ("sample_dpm_2", samplers.sample_dpm_2),
    ("sample_dpm_2_ancestral", samplers.sample_dpm_2_ancestral),
    ("sample_lms", samplers.sample_lms),
    ("sample_dpmpp_2s_ancestral", samplers.sample_dpmpp_2s_ancestral),
    ("sample_dpmpp_sde", samplers.sample_dpmpp_sde),
    ("sample_dpmpp_2m", samplers.sample_dpmpp_2m),
    ("sample_dpmpp_2m_sde", samplers.sample_dpmpp_2m_sde),
    ("sample_dpmpp_3m_sde", samplers.sample_dpmpp_3m_sde),
]


def _schedule(name: str, schedule64) -> torch.Tensor:
    if name == "uniform":
        return sigmas.uniform(8, 0, 0, schedule64)
    return {"karras": sigmas.karras, "exponential": sigmas.exponential}[name](
        8, schedule64.sigma_min, schedule64.sigma_max
    ).double()


def _run_pair(reference, ours, denoiser, x, sigma_list, **options):
    kwargs = dict(options)
    if "noise_sampler" in inspect.signature(reference).parameters:
        kwargs["noise_sampler"] = SeededNoise(5)
    expected = reference(denoiser, x.clone(), sigma_list, disable=True, **kwargs)
    if "noise_sampler" in kwargs:
        kwargs["noise_sampler"] = SeededNoise(5)
    return expected, ours(denoiser, x.clone(), sigma_list, **kwargs)


@pytest.mark.parametrize("schedule_name", ["karras", "exponential", "uniform"])
@pytest.mark.parametrize("name, ours", PAIRS, ids=[p[0] for p in PAIRS])
def test_matches_kdiffusion(name, ours, schedule_name, schedule64, denoiser, start_noise):
    sigma_list = _schedule(schedule_name, schedule64)
    x = start_noise * sigma_list[0]
    expected, actual = _run_pair(getattr(kdiffusion_sampling(), name), ours, denoiser, x, sigma_list)
    assert torch.isfinite(actual).all()
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "name, ours, options",
    [
        ("sample_euler_ancestral", samplers.sample_euler_ancestral, {"eta": 0.5, "s_noise": 0.9}),
        ("sample_dpmpp_2m_sde", samplers.sample_dpmpp_2m_sde, {"solver_type": "heun", "eta": 0.7}),
        ("sample_dpmpp_3m_sde", samplers.sample_dpmpp_3m_sde, {"eta": 0.0}),
        ("sample_dpmpp_sde", samplers.sample_dpmpp_sde, {"eta": 0.5, "r": 0.4}),
        ("sample_lms", samplers.sample_lms, {"order": 2}),
    ],
)
def test_options_match_kdiffusion(name, ours, options, schedule64, denoiser, start_noise):
    sigma_list = _schedule("karras", schedule64)
    x = start_noise * sigma_list[0]
    expected, actual = _run_pair(
        getattr(kdiffusion_sampling(), name), ours, denoiser, x, sigma_list, **options
    )
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "name, ours",
    [
        ("sample_euler", samplers.sample_euler),
        ("sample_heun", samplers.sample_heun),
        ("sample_dpm_2", samplers.sample_dpm_2),
    ],
)
def test_churn_matches_kdiffusion(name, ours, schedule64, denoiser, start_noise, monkeypatch):
    """With s_churn, k-diffusion draws torch.randn_like each step; A1111 routes that to its RNG."""
    kd = kdiffusion_sampling()
    hijack = SeededNoise(9)
    monkeypatch.setattr(
        kd, "torch", types.SimpleNamespace(randn_like=hijack.randn_like, no_grad=torch.no_grad)
    )
    sigma_list = _schedule("karras", schedule64)
    options = {"s_churn": 2.0, "s_tmin": 0.5, "s_tmax": 8.0, "s_noise": 1.003}
    x = start_noise * sigma_list[0]
    expected = getattr(kd, name)(denoiser, x.clone(), sigma_list, disable=True, **options)
    actual = ours(denoiser, x.clone(), sigma_list, noise_sampler=SeededNoise(9), **options)
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(actual, ours(denoiser, x.clone(), sigma_list))  # churn did something


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_dpm_fast_matches_kdiffusion(eta, schedule64, denoiser, start_noise):
    sigma_list = sigmas.uniform(12, 0, 0, schedule64)
    lo, hi = float(sigma_list[-2]), float(sigma_list[0])
    x = start_noise * hi
    kd = kdiffusion_sampling()
    expected = kd.sample_dpm_fast(
        denoiser, x.clone(), lo, hi, 12, disable=True, eta=eta, noise_sampler=SeededNoise(3)
    )
    actual = dpm_solver.sample_dpm_fast(
        denoiser, x.clone(), sigma_list, eta=eta, noise_sampler=SeededNoise(3)
    )
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("order, eta", [(3, 0.0), (2, 1.0)])
def test_dpm_adaptive_matches_kdiffusion(order, eta, schedule64, denoiser, start_noise):
    sigma_list = sigmas.karras(10, schedule64.sigma_min, schedule64.sigma_max).double()
    lo, hi = float(sigma_list[-2]), float(sigma_list[0])
    x = start_noise * hi
    kd = kdiffusion_sampling()
    expected = kd.sample_dpm_adaptive(
        denoiser, x.clone(), lo, hi, disable=True, order=order, eta=eta, noise_sampler=SeededNoise(3)
    )
    actual = dpm_solver.sample_dpm_adaptive(
        denoiser, x.clone(), sigma_list, order=order, eta=eta, noise_sampler=SeededNoise(3)
    )
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


def test_dpm_fast_rejects_zero_range(denoiser, start_noise):
    with pytest.raises(ValueError):
        dpm_solver.sample_dpm_fast(denoiser, start_noise, torch.tensor([0.0, 0.0]))


def test_ancestral_step_splits_variance():
    sigma, sigma_next = torch.tensor(3.0), torch.tensor(1.5)
    down, up = samplers.ancestral_step(sigma, sigma_next, 1.0)
    torch.testing.assert_close(down**2 + up**2, sigma_next**2)
    assert samplers.ancestral_step(sigma, sigma_next, 0.0) == (sigma_next, 0.0)
