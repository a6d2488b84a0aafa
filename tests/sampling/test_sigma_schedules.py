"""Schedule types against k-diffusion's functions or values derived by hand from A1111's definitions."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch
from kdiffusion_oracle import kdiffusion_external, kdiffusion_sampling

from modules.sampling import sigmas
from modules.sampling.sigmas import AYS_SD15, AYS_SDXL, ModelSchedule


@pytest.fixture(scope="module")
def kd_model(alphas_cumprod):
    # A1111's model wrapper over the LDM's float32 alphas_cumprod buffer.
    return kdiffusion_external().CompVisDenoiser(types.SimpleNamespace(alphas_cumprod=alphas_cumprod.float()))


def test_model_sigmas_match_kdiffusion(schedule32, kd_model):
    torch.testing.assert_close(schedule32.sigmas, kd_model.sigmas, rtol=0, atol=0)
    assert schedule32.sigma_min == pytest.approx(0.0292, abs=1e-4)
    assert schedule32.sigma_max == pytest.approx(14.6146, abs=1e-4)


def test_sigma_t_conversions_match_kdiffusion(schedule32, kd_model):
    probe = torch.tensor([0.03, 0.1, 1.0, 2.5, 14.0, 14.6])
    torch.testing.assert_close(schedule32.sigma_to_t(probe), kd_model.sigma_to_t(probe))
    t = torch.tensor([0.0, 0.5, 10.25, 500.0, 998.9, 999.0])
    torch.testing.assert_close(schedule32.t_to_sigma(t), kd_model.t_to_sigma(t))
    # Round trip on the training grid.
    torch.testing.assert_close(
        schedule32.sigma_to_t(schedule32.sigmas[::37]), torch.arange(0, 1000, 37).float()
    )


@pytest.mark.parametrize("n", [1, 7, 20])
def test_uniform_matches_kdiffusion(n, schedule32, kd_model):
    torch.testing.assert_close(sigmas.uniform(n, 0, 0, schedule32), kd_model.get_sigmas(n))


@pytest.mark.parametrize("n", [2, 10, 25])
def test_karras_exponential_polyexponential_match_kdiffusion(n):
    kd = kdiffusion_sampling()
    lo, hi = 0.0292, 14.6146
    torch.testing.assert_close(sigmas.karras(n, lo, hi), kd.get_sigmas_karras(n, lo, hi), rtol=0, atol=0)
    torch.testing.assert_close(sigmas.karras(n, lo, hi, rho=3.0), kd.get_sigmas_karras(n, lo, hi, rho=3.0))
    torch.testing.assert_close(sigmas.exponential(n, lo, hi), kd.get_sigmas_exponential(n, lo, hi))
    torch.testing.assert_close(sigmas.polyexponential(n, lo, hi), kd.get_sigmas_polyexponential(n, lo, hi))
    torch.testing.assert_close(
        sigmas.polyexponential(n, lo, hi, rho=2.0), kd.get_sigmas_polyexponential(n, lo, hi, rho=2.0)
    )


def test_sgm_uniform_and_normal_are_evenly_spaced_in_timesteps(schedule32):
    sgm = sigmas.sgm_uniform(10, schedule32.sigma_min, schedule32.sigma_max, schedule32)
    normal = sigmas.normal(10, schedule32.sigma_min, schedule32.sigma_max, schedule32)
    assert len(sgm) == len(normal) == 11 and sgm[-1] == normal[-1] == 0
    # SGM Uniform: 11 points from t=999 to t=0 with the last dropped; Normal: 10 points, both ends kept.
    torch.testing.assert_close(
        schedule32.sigma_to_t(sgm[:-1]), torch.linspace(999, 0, 11)[:-1], atol=2e-3, rtol=0
    )
    torch.testing.assert_close(
        schedule32.sigma_to_t(normal[:-1]), torch.linspace(999, 0, 10), atol=2e-3, rtol=0
    )


def test_simple_and_ddim_pick_training_sigmas(schedule32):
    table = schedule32.sigmas
    simple = sigmas.simple(10, 0, 0, schedule32)
    torch.testing.assert_close(simple[:-1], table[[999, 899, 799, 699, 599, 499, 399, 299, 199, 99]])
    ddim = sigmas.ddim(20, 0, 0, schedule32)
    torch.testing.assert_close(ddim[:-1], table[list(range(951, 0, -50))])
    assert len(sigmas.ddim(7, 0, 0, schedule32)) == 9  # A1111 quirk: 8 sigmas for 7 steps, plus 0


def test_kl_optimal_is_evenly_spaced_in_arctan_and_ends_at_sigma_min():
    result = sigmas.kl_optimal(8, 0.03, 14.6)
    assert len(result) == 9
    angles = torch.atan(result.double())
    torch.testing.assert_close(
        angles[1:] - angles[:-1], (angles[1] - angles[0]).expand(8), rtol=1e-5, atol=1e-6
    )
    assert result[0] == pytest.approx(14.6, rel=1e-5) and result[-1] == pytest.approx(0.03, rel=1e-5)


@pytest.mark.parametrize("is_sdxl, table", [(False, AYS_SD15), (True, AYS_SDXL)])
def test_align_your_steps(is_sdxl, table, schedule32):
    model = ModelSchedule(schedule32.sigmas, is_sdxl=is_sdxl)
    exact = sigmas.align_your_steps(11, 0, 0, model)  # A1111 uses the 11-entry table as is at n=11
    torch.testing.assert_close(exact, torch.tensor([*table, 0.0]))
    doubled = sigmas.align_your_steps(21, 0, 0, model)  # table points at every other step
    torch.testing.assert_close(doubled[:-1:2], torch.tensor(table))
    geometric_mean = math.sqrt(table[0] * table[1])
    assert doubled[1].item() == pytest.approx(geometric_mean, rel=1e-6)


def test_beta_quantiles_scale_sigma_linearly():
    lo, hi = 0.03, 14.6
    result = sigmas.beta(3, lo, hi)
    torch.testing.assert_close(result, torch.tensor([hi, (lo + hi) / 2, lo, 0.0]))
    skewed = sigmas.beta(5, lo, hi, alpha=2.0, beta=0.6)
    from scipy import stats

    expected = [lo + stats.beta.ppf(q, 2.0, 0.6) * (hi - lo) for q in np.linspace(1, 0, 5)] + [0.0]
    torch.testing.assert_close(skewed, torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize(
    "fn",
    [sigmas.uniform, sigmas.karras, sigmas.exponential, sigmas.polyexponential, sigmas.sgm_uniform,
     sigmas.normal, sigmas.simple, sigmas.beta, sigmas.align_your_steps, sigmas.lcm_uniform],
)  # fmt: skip
@pytest.mark.parametrize("n", [1, 4, 30])
def test_schedules_decrease_to_zero(fn, n, schedule32):
    result = fn(n, schedule32.sigma_min, schedule32.sigma_max, schedule32)
    assert len(result) == n + 1 and result[-1] == 0
    assert (result[:-1] > 0).all() and (result[1:] <= result[:-1]).all()


def test_a1111_timestep_lists(schedule32):
    assert sigmas.a1111_timesteps(20).tolist() == list(range(1, 1000, 50))
    assert sigmas.a1111_timesteps(3).tolist() == [1, 334, 667, 999]
    ddim_t = sigmas.ddim_timesteps(20, 0, 0, schedule32)
    torch.testing.assert_close(ddim_t, schedule32.sigmas[list(range(951, 0, -50))])


def test_unipc_time_uniform_spans_the_vp_grid(schedule32):
    result = sigmas.unipc_time_uniform(10, 0, 0, schedule32)
    assert len(result) == 11
    torch.testing.assert_close(result[0], schedule32.sigmas[-1], rtol=1e-5, atol=0)
    torch.testing.assert_close(result[-1], schedule32.sigmas[0], rtol=1e-5, atol=0)
    # t = 1 - k * 0.0999 lies on the 1/1000 grid at k = 10/... only at the ends; midpoint t = 0.5005.
    a = schedule32.alphas_cumprod.double()
    log_alpha = 0.5 * (0.5 * (a[499].log() + a[500].log()))
    expected = torch.sqrt(1 - torch.exp(2 * log_alpha)) / torch.exp(log_alpha)
    torch.testing.assert_close(result[5].double(), expected, rtol=1e-5, atol=0)


def test_lcm_uniform_uses_the_50_lcm_timesteps(schedule32):
    table = sigmas.lcm_sigmas(schedule32)
    torch.testing.assert_close(table, schedule32.sigmas[list(range(19, 1000, 20))])
    torch.testing.assert_close(sigmas.lcm_uniform(50, 0, 0, schedule32)[:-1], table.flip(0))


def test_discard_penultimate():
    result = sigmas.discard_penultimate(torch.tensor([3.0, 2.0, 1.0, 0.0]))
    assert result.tolist() == [3.0, 2.0, 0.0]
