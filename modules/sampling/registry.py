"""The one table of samplers and the one table of schedule types, and name resolution for both.

Names, aliases and defaults follow AUTOMATIC1111 1.10 so pasted parameters ("Sampler: DPM++ 2M Karras",
"k_euler_a", "Schedule type: Automatic") resolve to the same sampling. Extensions add entries with
``register_sampler`` / ``register_schedule_type`` on a ``SamplingRegistry`` (``default_registry()`` holds
the built-ins; each app builds its own, nothing is shared between UI and API by accident).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from modules.sampling import dpm_solver, samplers, sigmas, timestep_samplers
from modules.sampling.sigmas import ModelSchedule

AUTOMATIC = "automatic"


@dataclass(frozen=True)
class ScheduleTypeInfo:
    """A schedule type: ``function(n, sigma_min, sigma_max, model_schedule, **options) -> sigmas``."""

    name: str
    label: str
    function: Callable[..., torch.Tensor] | None  # None only for "Automatic"
    aliases: tuple[str, ...] = ()
    default_rho: float | None = None  # schedules that take rho (Karras, Polyexponential)
    hidden: bool = False  # a sampler's own schedule, not offered in the UI


@dataclass(frozen=True)
class SamplerInfo:
    """A sampler and how A1111 drives it."""

    name: str
    function: Callable[..., torch.Tensor]
    aliases: tuple[str, ...] = ()
    default_schedule: str = "uniform"  # what "Automatic" means for this sampler
    uses_ensd: bool = False  # draws ancestral noise, so "ENSD" belongs in its infotext
    second_order: bool = False  # two model calls per step
    brownian_noise: bool = False  # wants a per-image seeded Brownian noise sampler
    discard_next_to_last_sigma: bool = False
    timestep_space: bool = False  # A1111's DDIM/PLMS/UniPC family: starts from VP noise
    eta_kind: str | None = None  # "ancestral" (Eta, default 1) or "ddim" (Eta DDIM, default 0)
    denoiser: str = "discrete"  # model wrapper kind, see model_wrap.make_denoiser
    options: dict[str, Any] = field(default_factory=dict)  # fixed keyword arguments of the function

    def accepts(self, option: str) -> bool:
        """Whether the sampler function takes this keyword (eta, s_churn, ...), as A1111 checks."""
        return option in inspect.signature(self.function).parameters


def _schedule_types() -> list[ScheduleTypeInfo]:
    return [
        ScheduleTypeInfo(AUTOMATIC, "Automatic", None),
        ScheduleTypeInfo("uniform", "Uniform", sigmas.uniform),
        ScheduleTypeInfo("karras", "Karras", sigmas.karras, default_rho=7.0),
        ScheduleTypeInfo("exponential", "Exponential", sigmas.exponential),
        ScheduleTypeInfo("polyexponential", "Polyexponential", sigmas.polyexponential, default_rho=1.0),
        ScheduleTypeInfo("sgm_uniform", "SGM Uniform", sigmas.sgm_uniform, aliases=("SGMUniform",)),
        ScheduleTypeInfo("kl_optimal", "KL Optimal", sigmas.kl_optimal),
        ScheduleTypeInfo("align_your_steps", "Align Your Steps", sigmas.align_your_steps),
        ScheduleTypeInfo("simple", "Simple", sigmas.simple),
        ScheduleTypeInfo("normal", "Normal", sigmas.normal),
        ScheduleTypeInfo("ddim", "DDIM", sigmas.ddim),
        ScheduleTypeInfo("beta", "Beta", sigmas.beta),
        ScheduleTypeInfo("ddim_timesteps", "DDIM timesteps", sigmas.ddim_timesteps, hidden=True),
        ScheduleTypeInfo("unipc_time_uniform", "UniPC time uniform", sigmas.unipc_time_uniform, hidden=True),
        ScheduleTypeInfo("lcm_uniform", "LCM uniform", sigmas.lcm_uniform, hidden=True),
    ]


def _samplers() -> list[SamplerInfo]:
    s, ts, dpm = samplers, timestep_samplers, dpm_solver
    return [
        SamplerInfo("DPM++ 2M", s.sample_dpmpp_2m, ("k_dpmpp_2m",), "karras"),
        SamplerInfo("DPM++ SDE", s.sample_dpmpp_sde, ("k_dpmpp_sde",), "karras", second_order=True,
                    brownian_noise=True, eta_kind="ancestral"),
        SamplerInfo("DPM++ 2M SDE", s.sample_dpmpp_2m_sde, ("k_dpmpp_2m_sde",), "exponential",
                    brownian_noise=True, eta_kind="ancestral"),
        SamplerInfo("DPM++ 2M SDE Heun", s.sample_dpmpp_2m_sde, ("k_dpmpp_2m_sde_heun",), "exponential",
                    brownian_noise=True, eta_kind="ancestral", options={"solver_type": "heun"}),
        SamplerInfo("DPM++ 2S a", s.sample_dpmpp_2s_ancestral, ("k_dpmpp_2s_a",), "karras", uses_ensd=True,
                    second_order=True, eta_kind="ancestral"),
        SamplerInfo("DPM++ 3M SDE", s.sample_dpmpp_3m_sde, ("k_dpmpp_3m_sde",), "exponential",
                    discard_next_to_last_sigma=True, brownian_noise=True, eta_kind="ancestral"),
        SamplerInfo("Euler a", s.sample_euler_ancestral, ("k_euler_a", "k_euler_ancestral"), uses_ensd=True,
                    eta_kind="ancestral"),
        SamplerInfo("Euler", s.sample_euler, ("k_euler",)),
        SamplerInfo("LMS", s.sample_lms, ("k_lms",)),
        SamplerInfo("Heun", s.sample_heun, ("k_heun",), second_order=True),
        SamplerInfo("DPM2", s.sample_dpm_2, ("k_dpm_2",), "karras", discard_next_to_last_sigma=True,
                    second_order=True),
        SamplerInfo("DPM2 a", s.sample_dpm_2_ancestral, ("k_dpm_2_a",), "karras",
                    discard_next_to_last_sigma=True, uses_ensd=True, second_order=True, eta_kind="ancestral"),
        SamplerInfo("DPM fast", dpm.sample_dpm_fast, ("k_dpm_fast",), uses_ensd=True, eta_kind="ancestral"),
        SamplerInfo("DPM adaptive", dpm.sample_dpm_adaptive, ("k_dpm_ad",), uses_ensd=True,
                    eta_kind="ancestral"),
        SamplerInfo("Restart", s.sample_restart, ("restart",), "karras", second_order=True),
        SamplerInfo("DDIM", ts.sample_ddim, ("ddim",), "ddim_timesteps", timestep_space=True, eta_kind="ddim"),
        SamplerInfo("PLMS", ts.sample_plms, ("plms",), "ddim_timesteps", timestep_space=True),
        SamplerInfo("UniPC", ts.sample_unipc, ("unipc",), "unipc_time_uniform", timestep_space=True),
        SamplerInfo("LCM", s.sample_lcm, ("k_lcm",), "lcm_uniform", denoiser="lcm"),
    ]  # fmt: skip


def _key(name: str) -> str:
    return name.strip().lower()


class SamplingRegistry:
    """Samplers and schedule types by name, label and alias (all case-insensitive)."""

    def __init__(self) -> None:
        self.samplers: dict[str, SamplerInfo] = {}
        self.schedule_types: dict[str, ScheduleTypeInfo] = {}
        self._sampler_keys: dict[str, str] = {}
        self._schedule_keys: dict[str, str] = {}

    def register_sampler(self, info: SamplerInfo) -> None:
        """Add (or replace) a sampler; its default schedule type must already be registered."""
        if _key(info.default_schedule) not in self._schedule_keys:
            raise ValueError(
                f"sampler {info.name!r}: unknown default schedule type {info.default_schedule!r}"
            )
        self.samplers[info.name] = info
        for alias in (info.name, *info.aliases):
            self._sampler_keys[_key(alias)] = info.name

    def register_schedule_type(self, info: ScheduleTypeInfo) -> None:
        """Add (or replace) a schedule type."""
        self.schedule_types[info.name] = info
        for alias in (info.name, info.label, *info.aliases):
            self._schedule_keys[_key(alias)] = info.name

    def visible_schedule_types(self) -> list[ScheduleTypeInfo]:
        """Schedule types for a dropdown, in table order."""
        return [info for info in self.schedule_types.values() if not info.hidden]

    def schedule_type(self, name: str | None) -> ScheduleTypeInfo:
        """A schedule type by name, label or alias; None or "" means Automatic."""
        key = self._schedule_keys.get(_key(name or AUTOMATIC))
        if key is None:
            valid = ", ".join(info.label for info in self.visible_schedule_types())
            raise ValueError(f"unknown schedule type {name!r}; valid schedule types: {valid}")
        return self.schedule_types[key]

    def resolve_sampler(
        self, name: str, scheduler: str | None = None
    ) -> tuple[SamplerInfo, ScheduleTypeInfo]:
        """The sampler and the concrete schedule type for a sampler name (old "DPM++ 2M Karras" style
        combined names included) and an optional schedule type; Automatic becomes the sampler's default.
        """
        sampler_key = self._sampler_keys.get(_key(name))
        if sampler_key is None:
            sampler_key, scheduler = self._split_combined(name, scheduler)
        sampler = self.samplers[sampler_key]
        schedule = self.schedule_type(scheduler)
        if schedule.name == AUTOMATIC:
            schedule = self.schedule_type(sampler.default_schedule)
        return sampler, schedule

    def _split_combined(self, name: str, scheduler: str | None) -> tuple[str, str | None]:
        # Old names put the schedule after the sampler ("DPM++ 2M SDE Exponential"); the suffix wins
        # over a separately given schedule, as in A1111. Longest suffix first, so "SGM Uniform" is not
        # read as "Uniform" (A1111 checks in table order and then fails to find "... SGM").
        suffixes = sorted(self._schedule_keys, key=len, reverse=True)
        for suffix in suffixes:
            if _key(name).endswith(" " + suffix):
                sampler_key = self._sampler_keys.get(_key(name)[: -len(suffix) - 1])
                if sampler_key is not None:
                    return sampler_key, suffix
        valid = ", ".join(self.samplers)
        raise ValueError(f"unknown sampler {name!r}; valid samplers: {valid}")


def default_registry() -> SamplingRegistry:
    """A fresh registry with every built-in schedule type and sampler."""
    registry = SamplingRegistry()
    for schedule in _schedule_types():
        registry.register_schedule_type(schedule)
    for sampler in _samplers():
        registry.register_sampler(sampler)
    return registry


def build_sigmas(
    sampler: SamplerInfo,
    schedule: ScheduleTypeInfo,
    steps: int,
    model_schedule: ModelSchedule,
    *,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float | None = None,
    always_discard_next_to_last_sigma: bool = False,
    use_old_karras_scheduler_sigmas: bool = False,
    **schedule_options: Any,
) -> torch.Tensor:
    """The sigmas a sampler walks for ``steps`` steps, with A1111's overrides (0/None = not set)."""
    discard = sampler.discard_next_to_last_sigma or always_discard_next_to_last_sigma
    n = steps + 1 if discard else steps
    if schedule.function is None:
        raise ValueError("resolve 'Automatic' with resolve_sampler() before building sigmas")
    # A1111 compatibility: the pre-1.6 option fixed Karras-type ranges at 0.1..10.
    low, high = (
        (0.1, 10.0)
        if use_old_karras_scheduler_sigmas
        else (model_schedule.sigma_min, model_schedule.sigma_max)
    )
    options = dict(schedule_options)
    if schedule.default_rho is not None and rho:
        options["rho"] = rho
    result = schedule.function(n, sigma_min or low, sigma_max or high, model_schedule, **options)
    # A1111 compatibility: DDIM/PLMS/UniPC take one more step instead of dropping a sigma.
    if discard and not sampler.timestep_space:
        result = sigmas.discard_penultimate(result)
    return result


def initial_noise_scale(sampler: SamplerInfo, sigma_max: float, sgm_noise_multiplier: bool = False) -> float:
    """What unit noise is multiplied by to start txt2img at ``sigma_max``."""
    # A1111's DDIM/PLMS/UniPC start from unit-variance VP noise, i.e. sqrt(1 + sigma^2) on our scale;
    # k-diffusion samplers use sigma_max unless the SGM noise multiplier option asks for the same.
    if sampler.timestep_space or sgm_noise_multiplier:
        return float((1.0 + sigma_max**2) ** 0.5)
    return float(sigma_max)
