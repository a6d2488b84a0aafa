"""Name resolution, the sigma builder and every registered sampler running on a few schedule types."""

from __future__ import annotations

import pytest
import torch
from sampling_helpers import SHAPE, SeededNoise

from modules.sampling import sigmas
from modules.sampling.registry import (
    SamplerInfo,
    ScheduleTypeInfo,
    build_sigmas,
    default_registry,
    initial_noise_scale,
)
from modules.sampling.samplers import sample_euler


@pytest.fixture(scope="module")
def registry():
    return default_registry()


@pytest.mark.parametrize(
    "name, scheduler, sampler, schedule",
    [
        ("DPM++ 2M Karras", None, "DPM++ 2M", "karras"),
        ("DPM++ 2M", None, "DPM++ 2M", "karras"),
        ("DPM++ 2M", "Automatic", "DPM++ 2M", "karras"),
        ("DPM++ 2M", "Exponential", "DPM++ 2M", "exponential"),
        ("Euler a", None, "Euler a", "uniform"),
        ("k_euler_a", "", "Euler a", "uniform"),
        ("k_euler_ancestral", "karras", "Euler a", "karras"),
        ("euler A", "KARRAS", "Euler a", "karras"),
        ("DPM++ SDE Karras", None, "DPM++ SDE", "karras"),
        ("DPM++ 2M SDE Exponential", "Karras", "DPM++ 2M SDE", "exponential"),
        ("DPM++ 2M SDE Heun Karras", None, "DPM++ 2M SDE Heun", "karras"),
        ("DPM++ 2M SGM Uniform", None, "DPM++ 2M", "sgm_uniform"),
        ("Euler", "SGMUniform", "Euler", "sgm_uniform"),
        ("LMS Karras", None, "LMS", "karras"),
        ("DPM2 a", None, "DPM2 a", "karras"),
        ("DPM++ 3M SDE", None, "DPM++ 3M SDE", "exponential"),
        ("Restart", None, "Restart", "karras"),
        ("DDIM", None, "DDIM", "ddim_timesteps"),
        ("plms", None, "PLMS", "ddim_timesteps"),
        ("UniPC", "Automatic", "UniPC", "unipc_time_uniform"),
        ("LCM", None, "LCM", "lcm_uniform"),
        ("DPM adaptive", "Align Your Steps", "DPM adaptive", "align_your_steps"),
        ("Heun", "kl_optimal", "Heun", "kl_optimal"),
    ],
)
def test_resolve_sampler(registry, name, scheduler, sampler, schedule):
    info, schedule_info = registry.resolve_sampler(name, scheduler)
    assert (info.name, schedule_info.name) == (sampler, schedule)


def test_unknown_names_list_valid_ones(registry):
    with pytest.raises(ValueError, match="valid samplers: .*DPM\\+\\+ 2M.*Euler a"):
        registry.resolve_sampler("Euler z")
    with pytest.raises(ValueError, match="valid schedule types: .*Karras"):
        registry.resolve_sampler("Euler", "Karas")


def test_visible_schedule_types_are_a1111s(registry):
    labels = [s.label for s in registry.visible_schedule_types()]
    assert labels == ["Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform",
                      "KL Optimal", "Align Your Steps", "Simple", "Normal", "DDIM", "Beta"]  # fmt: skip


def test_extension_registers_sampler_and_schedule(registry):
    custom = default_registry()
    custom.register_schedule_type(
        ScheduleTypeInfo("linear", "Linear", lambda n, lo, hi, m: torch.linspace(hi, 0, n + 1))
    )
    custom.register_sampler(SamplerInfo("My Euler", sample_euler, ("my_euler",), default_schedule="linear"))
    info, schedule = custom.resolve_sampler("my_euler Linear")
    assert (info.name, schedule.name) == ("My Euler", "linear")
    with pytest.raises(ValueError):
        registry.resolve_sampler("My Euler")  # other registries are untouched
    with pytest.raises(ValueError, match="default schedule"):
        custom.register_sampler(SamplerInfo("Broken", sample_euler, default_schedule="nope"))


def test_build_sigmas_discards_penultimate_for_dpm2(registry, schedule32):
    dpm2, karras = registry.resolve_sampler("DPM2")
    result = build_sigmas(dpm2, karras, 10, schedule32)
    full = sigmas.karras(11, schedule32.sigma_min, schedule32.sigma_max)
    torch.testing.assert_close(result, torch.cat([full[:-2], full[-1:]]))
    euler, _ = registry.resolve_sampler("Euler")
    forced = build_sigmas(euler, karras, 10, schedule32, always_discard_next_to_last_sigma=True)
    torch.testing.assert_close(forced, result)


def test_build_sigmas_overrides(registry, schedule32):
    euler, karras = registry.resolve_sampler("Euler", "Karras")
    result = build_sigmas(euler, karras, 6, schedule32, sigma_min=0.1, sigma_max=5.0, rho=3.0)
    torch.testing.assert_close(result, sigmas.karras(6, 0.1, 5.0, rho=3.0))
    old = build_sigmas(euler, karras, 6, schedule32, use_old_karras_scheduler_sigmas=True)
    torch.testing.assert_close(old, sigmas.karras(6, 0.1, 10.0))
    _, uniform = registry.resolve_sampler("Euler")
    assert "rho" not in uniform.function.__code__.co_varnames
    build_sigmas(euler, uniform, 6, schedule32, rho=3.0)  # rho is ignored where it does not apply


def test_timestep_samplers_take_an_extra_step_instead_of_discarding(registry, schedule32):
    ddim, schedule = registry.resolve_sampler("DDIM")
    plain = build_sigmas(ddim, schedule, 10, schedule32)
    forced = build_sigmas(ddim, schedule, 10, schedule32, always_discard_next_to_last_sigma=True)
    torch.testing.assert_close(forced, sigmas.ddim_timesteps(11, 0, 0, schedule32))
    assert len(plain) == 10


def test_initial_noise_scale(registry):
    euler, _ = registry.resolve_sampler("Euler")
    ddim, _ = registry.resolve_sampler("DDIM")
    assert initial_noise_scale(euler, 14.6) == 14.6
    assert initial_noise_scale(ddim, 14.6) == pytest.approx((1 + 14.6**2) ** 0.5)
    assert initial_noise_scale(euler, 14.6, sgm_noise_multiplier=True) == pytest.approx((1 + 14.6**2) ** 0.5)


def test_sampler_options(registry):
    assert registry.resolve_sampler("Euler a")[0].accepts("eta")
    assert not registry.resolve_sampler("DPM++ 2M")[0].accepts("eta")
    assert not registry.resolve_sampler("Euler")[0].accepts("eta")
    assert registry.resolve_sampler("Euler")[0].accepts("s_churn")
    assert registry.resolve_sampler("DPM++ 2M SDE Heun")[0].options == {"solver_type": "heun"}


ALL = [info.name for info in default_registry().samplers.values()]


@pytest.mark.parametrize("schedule_name", ["Automatic", "Karras", "Exponential", "Beta"])
@pytest.mark.parametrize("name", ALL)
def test_every_sampler_runs(registry, name, schedule_name, schedule32, denoiser, target):
    info, schedule = registry.resolve_sampler(name, schedule_name)
    sigma_list = build_sigmas(info, schedule, 6, schedule32).double()
    x = torch.randn(SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = x * initial_noise_scale(info, float(sigma_list[0]))
    out = info.function(denoiser, x, sigma_list, noise_sampler=SeededNoise(0), **info.options)
    assert out.shape == SHAPE and torch.isfinite(out).all()
    # Six steps of any sampler get most of the way from noise to the data's mean.
    assert (out - target).abs().mean() < 0.5 * (x - target).abs().mean()
