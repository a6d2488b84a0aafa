"""Shared fixtures: SD's training schedule in float64 and a smooth analytic model."""

from __future__ import annotations

import pytest
import torch
from sampling_helpers import SHAPE

from modules.models.bundle import scaled_linear_alphas_cumprod
from modules.sampling.sigmas import ModelSchedule


@pytest.fixture(scope="session")
def alphas_cumprod() -> torch.Tensor:
    return scaled_linear_alphas_cumprod()


@pytest.fixture(scope="session")
def schedule64(alphas_cumprod) -> ModelSchedule:
    return ModelSchedule.from_alphas_cumprod(alphas_cumprod, dtype=torch.float64)


@pytest.fixture(scope="session")
def schedule32(alphas_cumprod) -> ModelSchedule:
    return ModelSchedule.from_alphas_cumprod(alphas_cumprod)


@pytest.fixture(scope="session")
def target() -> torch.Tensor:
    return torch.randn(SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="session")
def denoiser(target):
    """D(x, sigma): the exact denoiser of N(target, 0.5^2) data plus a nonlinear term, per-sample sigma."""

    def model(x, sigma, **_):
        s = sigma.reshape(-1, 1, 1, 1)
        return (x * 0.25 + target * s**2) / (0.25 + s**2) + 0.1 * torch.tanh(x) / (1 + s)

    return model


@pytest.fixture(scope="session")
def eps_model(target):
    """An analytic UNet stand-in: eps(x, t), smooth in both."""

    def apply_model(x, t, **_):
        return 0.3 * x + 0.2 * torch.tanh(x + target * t.reshape(-1, 1, 1, 1) / 1000)

    return apply_model


@pytest.fixture
def start_noise() -> torch.Tensor:
    return torch.randn(SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
