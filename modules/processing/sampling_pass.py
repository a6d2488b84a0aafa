"""A sampling pass: planned once (``plan_pass``: sampler, schedule, sigmas, options, noise source and
the parameters-text pairs it adds), then run per batch (``run_pass``: seeded noise, the CFG denoiser and
the sampler, with progress).

Interrupt/Skip stop between model calls; the latest latent is then returned, so what was made so far
is still decoded and shown, as users expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from modules.models.bundle import Arch, ModelBundle
from modules.models.tome import token_merging
from modules.processing.job import GenerationJob
from modules.processing.job import infotext_key as key
from modules.processing.preview import preview_image
from modules.sampling import registry as sampling_registry
from modules.sampling.brownian import BrownianNoiseSampler, sigma_range
from modules.sampling.denoiser import (
    AfterCFG,
    CFGDenoiser,
    ComposableConditioning,
    DenoiserHooks,
    SamplingInterrupted,
    ScheduledConditioning,
    UncondSkip,
    UNetApply,
)
from modules.sampling.model_wrap import make_denoiser
from modules.sampling.registry import SamplerInfo, ScheduleTypeInfo
from modules.sampling.rng import ImageNoiseSampler, ImageRNG
from modules.sampling.sigmas import ModelSchedule

if TYPE_CHECKING:
    from modules.processing.pipeline import JobPlan
    from modules.runtime import Runtime

RNG_SOURCES = {"CPU": "cpu", "GPU": "gpu", "NV": "nv"}


@dataclass(frozen=True)
class SamplingPlan:
    """One sampling pass, resolved once before any batch runs: sampler, schedule, the sigmas walked,
    the sampler's options, the noise source and the parameters-text pairs the pass contributes."""

    sampler: SamplerInfo
    schedule: ScheduleTypeInfo
    model_schedule: ModelSchedule
    sigmas: torch.Tensor  # the sigmas this pass walks (img2img: the tail of a longer schedule)
    schedule_steps: int  # what prompt schedules are built on: model calls per pass (A1111 counts calls)
    options: dict[str, Any]
    cfg_scale: float
    rng_source: str
    eta_noise_seed_delta: int
    noise_multiplier: float = 1.0
    uncond_skip: UncondSkip = field(default_factory=UncondSkip)
    token_merging_ratio: float = 0.0
    infotext: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_run(self) -> int:
        return len(self.sigmas) - 1


@dataclass
class BatchInput:
    """What one batch brings to a pass: conditioning, seeds and (img2img) the latents it starts from."""

    conds: list[ComposableConditioning]
    unconds: list[ScheduledConditioning]
    shape: tuple[int, ...]  # one latent's (channels, height, width)
    seeds: list[int]
    subseeds: list[int]
    init_latent: torch.Tensor | None = None
    image_cond: torch.Tensor | None = None
    # inpainting: 1 = repaint, [1 or B, 1, h, w] at latent size; the rest is held to init_latent
    latent_mask: torch.Tensor | None = None

    def to(self, device: torch.device) -> BatchInput:
        """The same input with its tensors on ``device`` (moved once, before the sampling loop)."""
        names = ("init_latent", "image_cond", "latent_mask")
        moved = {n: None if getattr(self, n) is None else getattr(self, n).to(device) for n in names}
        return replace(self, **moved)


def schedule_label(
    runtime: Runtime, sampler: SamplerInfo, schedule: ScheduleTypeInfo, chosen: str | None
) -> str:
    """The "Schedule type" a pass writes, as A1111 1.10 does: the schedule's label, or "Automatic" when
    Automatic was chosen for a sampler with no schedule of its own (A1111 then uses the model's
    timesteps, our Uniform, or its DDIM/PLMS/UniPC/LCM spacing: hidden types here)."""
    automatic = runtime.sampling_registry.schedule_type(chosen).name == sampling_registry.AUTOMATIC
    if automatic and (schedule.name == "uniform" or schedule.hidden):
        return "Automatic"
    return schedule.label


def img2img_steps(steps: int, strength: float, fix_steps: bool) -> tuple[int, int]:
    """(schedule length, t_enc): A1111 runs the last t_enc + 1 steps of a schedule of that length."""
    if fix_steps:
        return int(steps / min(strength, 0.999)) if strength > 0 else 0, steps - 1
    return steps, int(min(strength, 0.999) * steps)


def model_schedule(bundle: ModelBundle) -> ModelSchedule:
    return ModelSchedule.from_alphas_cumprod(bundle.alphas_cumprod, is_sdxl=bundle.arch is Arch.SDXL)


def plan_pass(
    runtime: Runtime,
    bundle: ModelBundle,
    job: GenerationJob,
    settings: Mapping[str, Any],
    *,
    steps: int,
    sampler_name: str,
    scheduler: str | None,
    strength: float | None = None,
    fix_steps: bool = False,
    noise_multiplier: float = 1.0,
    is_hires: bool = False,
) -> SamplingPlan:
    """Resolve a pass (fails fast on an unknown sampler or schedule). ``strength`` set means the pass
    starts from an image (img2img, hires): it runs the last part of a schedule, as A1111 does."""
    sampler, schedule = runtime.sampling_registry.resolve_sampler(sampler_name, scheduler)
    table = model_schedule(bundle)
    if strength is None:
        sigmas = sampling_registry.build_sigmas(sampler, schedule, steps, table)
    else:
        length, t_enc = img2img_steps(steps, strength, fix_steps)
        sigmas = sampling_registry.build_sigmas(sampler, schedule, length, table)[length - t_enc - 1 :]
    run = len(sigmas) - 1
    options, infotext = sampler_options(sampler, job, settings)
    if not is_hires:
        infotext[key("scheduler")] = schedule_label(runtime, sampler, schedule, scheduler)
    ensd = int(settings["eta_noise_seed_delta"] or 0)
    if ensd and sampler.uses_ensd:
        infotext[key("eta_noise_seed_delta")] = ensd
    if strength is not None and noise_multiplier != 1.0:
        infotext[key("initial_noise_multiplier")] = noise_multiplier
    uncond_skip = UncondSkip(
        float(settings["s_min_uncond"]),
        bool(settings["s_min_uncond_all"]),
        float(settings["skip_early_cond"]),
    )
    infotext.update(uncond_skip_infotext(uncond_skip, sigmas))
    merging = token_merging_ratio(job, settings, starts_from_image=strength is not None, is_hires=is_hires)
    if merging:
        infotext[key("token_merging_ratio_hr" if is_hires else "token_merging_ratio")] = merging
    return SamplingPlan(
        sampler=sampler,
        schedule=schedule,
        model_schedule=table,
        sigmas=sigmas,
        # A1111 compatibility: second-order samplers call the model twice per step and its denoiser
        # counts calls, so their prompt schedules span twice the steps.
        schedule_steps=run * 2 if sampler.second_order else run,
        options=options,
        cfg_scale=job.cfg_scale,
        rng_source=RNG_SOURCES[settings["randn_source"]],
        eta_noise_seed_delta=ensd,
        noise_multiplier=noise_multiplier,
        uncond_skip=uncond_skip,
        token_merging_ratio=merging,
        infotext=infotext,
    )


def token_merging_ratio(
    job: GenerationJob, settings: Mapping[str, Any], *, starts_from_image: bool, is_hires: bool
) -> float:
    """The pass's token merging ratio, chosen as A1111 does: the hires pass's and img2img's own ratios
    apply when non-zero, else the general one; a general ratio the request overrides wins in img2img."""
    general = float(settings["token_merging_ratio"])
    if is_hires:
        return float(settings["token_merging_ratio_hr"]) or general
    if starts_from_image and "token_merging_ratio" not in (job.override_settings or {}):
        return float(settings["token_merging_ratio_img2img"]) or general
    return general


def uncond_skip_infotext(skip: UncondSkip, sigmas: torch.Tensor) -> dict[str, Any]:
    """A1111 records these only when a call actually skipped the negative prompt; the calls are judged
    at the schedule's sigmas (exact for first-order samplers)."""
    calls = len(sigmas) - 1
    pairs: dict[str, Any] = {}
    if skip.early > 0:
        pairs[key("skip_early_cond")] = skip.early
    elif any(skip.skips(i, calls, float(sigmas[i])) for i in range(calls)):
        pairs[key("s_min_uncond")] = skip.s_min_uncond
        if skip.all_steps:
            pairs[key("s_min_uncond_all")] = True
    return pairs


def sampler_options(
    sampler: SamplerInfo, job: GenerationJob, settings: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword options for the sampler function, and the infotext pairs that record non-defaults."""
    options: dict[str, Any] = dict(sampler.options)
    infotext: dict[str, Any] = {}
    if sampler.eta_kind and sampler.accepts("eta"):
        default = settings["eta_ancestral"] if sampler.eta_kind == "ancestral" else settings["eta_ddim"]
        eta = default if job.eta is None else job.eta
        options["eta"] = eta
        if eta != (1.0 if sampler.eta_kind == "ancestral" else 0.0):
            infotext[key("eta_ancestral" if sampler.eta_kind == "ancestral" else "eta_ddim")] = eta
    # A1111 records each one that differs from the sampler's neutral value.
    for name, neutral in (("s_churn", 0.0), ("s_tmin", 0.0), ("s_tmax", float("inf")), ("s_noise", 1.0)):
        if not sampler.accepts(name):
            continue
        value = getattr(job, name)
        value = settings[name] if value is None else value
        if name == "s_tmax" and not value:
            value = float("inf")  # A1111 treats 0 as "no upper limit"
        options[name] = value
        if value != neutral:
            infotext[key(name)] = value
    return options, infotext


def sampler_sigmas(sigmas: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The sigmas handed to the sampler: on the latent's device, as A1111 moves them (``.to(x.device)``).

    The samplers' scalar maths then runs where A1111's does; a CUDA op with a host scalar may round
    differently (division by a host scalar becomes a multiplication by its reciprocal).
    """
    return sigmas.to(device)


def run_pass(runtime: Runtime, plan: JobPlan, sampling: SamplingPlan, batch: BatchInput) -> torch.Tensor:
    """Sample one batch through a planned pass: noise, the CFG denoiser, the sampler.

    Every tensor of the loop lives on the model's device: the batch's inputs are moved once, the noise
    is drawn there (or, for the CPU and NV sources, drawn on the host and moved, as A1111 does).
    """
    bundle, job = plan.model, plan.job
    device = bundle.device
    batch = batch.to(device)
    sigmas = sampler_sigmas(sampling.sigmas, device)
    rng = ImageRNG(
        batch.shape,
        batch.seeds,
        batch.subseeds,
        job.subseed_strength,
        job.seed_resize_from_h,
        job.seed_resize_from_w,
        source=sampling.rng_source,
        eta_noise_seed_delta=sampling.eta_noise_seed_delta,
        device=device,
        latent_factor=bundle.vae_scale_factor,
    )
    noise = rng.first()
    if batch.init_latent is None:
        x = noise * sampling_registry.initial_noise_scale(sampling.sampler, float(sampling.sigmas[0]))
    else:
        x = batch.init_latent + noise * sampling.noise_multiplier * sigmas[0]
    noise_sampler = (
        BrownianNoiseSampler(x, *sigma_range(sigmas), seeds=batch.seeds)
        if sampling.sampler.brownian_noise
        else ImageNoiseSampler(rng)
    )
    time_ids = None
    if bundle.arch is Arch.SDXL:
        h, w = batch.shape[1] * bundle.vae_scale_factor, batch.shape[2] * bundle.vae_scale_factor
        time_ids = torch.tensor([[h, w, 0, 0, h, w]] * len(batch.seeds), dtype=torch.float32, device=device)
    denoiser = CFGDenoiser(
        make_denoiser(
            sampling.sampler.denoiser, UNetApply(bundle), sampling.model_schedule, bundle.prediction_type
        ),
        batch.conds,
        batch.unconds,
        sampling.cfg_scale,
        len(sigmas) - 1,
        image_cond=batch.image_cond,
        time_ids=time_ids,
        should_stop=runtime.progress.should_stop,
        hooks=denoiser_hooks(runtime, batch),
        dtype=bundle.dtype,
        uncond_skip=sampling.uncond_skip,
    )
    with token_merging(bundle.unet, sampling.token_merging_ratio):
        samples = run_sampler(runtime, plan, sampling, denoiser, x, sigmas, noise_sampler)
    if batch.latent_mask is not None:
        samples = hold_unmasked(samples, batch.init_latent, batch.latent_mask)
    return samples


def hold_unmasked(x: torch.Tensor, init_latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep the original latent where the mask is 0 (inpainting with any model)."""
    return init_latent * (1 - mask) + x * mask


def denoiser_hooks(runtime: Runtime, batch: BatchInput) -> DenoiserHooks:
    """The run's hooks: inpainting's latent blend first, then the extensions' (as A1111 orders them)."""
    extension_hooks = getattr(runtime, "denoiser_hooks", None) or DenoiserHooks()
    hooks = DenoiserHooks(list(extension_hooks.before_step), list(extension_hooks.after_cfg))
    if batch.latent_mask is not None:
        init, mask = batch.init_latent, batch.latent_mask

        def blend(after: AfterCFG) -> None:
            after.denoised = hold_unmasked(after.denoised, init, mask)

        hooks.after_cfg.insert(0, blend)
    return hooks


def run_sampler(
    runtime: Runtime,
    plan: JobPlan,
    sampling: SamplingPlan,
    denoiser: CFGDenoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    noise_sampler: Any,
) -> torch.Tensor:
    progress, settings = runtime.progress, plan.settings
    total = len(sigmas) - 1
    latest = {"x": x}
    every = int(settings["show_progress_every_n_steps"]) if settings["live_previews_enable"] else 0
    # The preview takes the size this pass's images will have (a hires pass: the upscaled size).
    scale = plan.model.vae_scale_factor
    method, size = settings["show_progress_type"], (x.shape[-1] * scale, x.shape[-2] * scale)

    def callback(info: dict[str, Any]) -> None:
        latest["x"] = info["x"]
        step = int(info["i"]) + 1
        progress.set_step(step, total)
        if every > 0 and step % every == 0 and step < total:
            progress.set_preview(preview_image(plan.model, info["denoised"][0], method, size))

    progress.set_step(0, total)
    try:
        result = sampling.sampler.function(
            denoiser,
            x,
            sigmas,
            extra_args={},
            callback=callback,
            noise_sampler=noise_sampler,
            **sampling.options,
        )
    except SamplingInterrupted:
        result = latest["x"]
    return result
