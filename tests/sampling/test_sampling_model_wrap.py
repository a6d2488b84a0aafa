"""The UNet wrapper equals k-diffusion's CompVisDenoiser / CompVisVDenoiser."""

from __future__ import annotations

import pytest
import torch
from kdiffusion_oracle import kdiffusion_external

from modules.sampling.model_wrap import DiscreteDenoiser, make_denoiser


class _CompVisStub:
    """The two things k-diffusion reads from a CompVis model: alphas_cumprod and apply_model."""

    def __init__(self, alphas_cumprod, apply_model):
        self.alphas_cumprod = alphas_cumprod
        self.apply_model = lambda x, t, cond=None, **kw: apply_model(x, t)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_matches_kdiffusion(prediction_type, alphas_cumprod, schedule64, eps_model, start_noise):
    external = kdiffusion_external()
    stub = _CompVisStub(alphas_cumprod, eps_model)
    reference_cls = external.CompVisDenoiser if prediction_type == "epsilon" else external.CompVisVDenoiser
    reference = reference_cls(stub)
    ours = DiscreteDenoiser(eps_model, schedule64, prediction_type)
    sigma = torch.tensor([14.0, 0.5], dtype=torch.float64)
    x = start_noise * sigma.reshape(-1, 1, 1, 1)
    torch.testing.assert_close(ours(x, sigma), reference(x, sigma, cond=None), rtol=1e-12, atol=1e-12)


def test_passes_keywords_and_scaled_input(schedule64, start_noise):
    seen = {}

    def apply_model(x, t, **kw):
        seen.update(x=x, t=t, **kw)
        return torch.zeros_like(x)

    sigma = torch.tensor([2.0, 2.0], dtype=torch.float64)
    out = DiscreteDenoiser(apply_model, schedule64)(start_noise, sigma, cond="text")
    assert seen["cond"] == "text"
    torch.testing.assert_close(seen["x"], start_noise / 5**0.5)
    torch.testing.assert_close(schedule64.t_to_sigma(seen["t"]).double(), sigma, rtol=1e-6, atol=0)
    torch.testing.assert_close(out, start_noise)  # zero noise predicted: x is already clean


def test_rejects_unknown_prediction_type(schedule64, eps_model):
    with pytest.raises(ValueError, match="epsilon"):
        DiscreteDenoiser(eps_model, schedule64, "sample")


def test_v_prediction_recovers_clean_latent(schedule64):
    clean = torch.randn(1, 4, 2, 2, dtype=torch.float64)
    noise = torch.randn(1, 4, 2, 2, dtype=torch.float64)
    sigma = torch.tensor([3.0], dtype=torch.float64)
    alpha, sigma_vp = 1 / (1 + 9) ** 0.5, 3 / (1 + 9) ** 0.5
    oracle_v = alpha * noise - sigma_vp * clean  # the true v for this noisy sample
    denoiser = DiscreteDenoiser(lambda x, t: oracle_v, schedule64, "v_prediction")
    torch.testing.assert_close(denoiser(clean + 3 * noise, sigma), clean)


def test_lcm_denoiser_quantises_timesteps_and_applies_boundary_scalings(schedule64, start_noise):
    seen = {}

    def apply_model(x, t, **kw):
        seen["t"] = t
        return torch.full_like(x, 0.5)

    denoiser = make_denoiser("lcm", apply_model, schedule64)
    sigma = (schedule64.sigmas[[499, 99]] * torch.tensor([1.01, 0.99], dtype=torch.float64)).contiguous()
    out = denoiser(start_noise, sigma)
    assert seen["t"].tolist() == [499, 99]
    s = sigma.reshape(-1, 1, 1, 1)
    scaled = torch.tensor([4990.0, 990.0], dtype=torch.float64).reshape(-1, 1, 1, 1)
    c_skip, c_out = 0.25 / (scaled**2 + 0.25), scaled / (scaled**2 + 0.25) ** 0.5
    torch.testing.assert_close(out, c_out * (start_noise - s * 0.5) + c_skip * start_noise)


def test_make_denoiser_kinds(schedule64, eps_model):
    assert isinstance(make_denoiser("discrete", eps_model, schedule64, "v_prediction"), DiscreteDenoiser)
    with pytest.raises(ValueError, match="lcm"):
        make_denoiser("karras", eps_model, schedule64)
