"""One batch's sampling run: seeded noise, sigmas, the CFG denoiser and the sampler, with progress.

Interrupt/Skip stop between model calls; the latest latent is then returned, so what was made so far
is still decoded and shown, as users expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from modules.models.bundle import Arch
from modules.processing.vae import approximate_preview
from modules.sampling import registry as sampling_registry
from modules.sampling.brownian import BrownianNoiseSampler, sigma_range
from modules.sampling.denoiser import AfterCFG, CFGDenoiser, DenoiserHooks, SamplingInterrupted, UNetApply
from modules.sampling.model_wrap import make_denoiser
from modules.sampling.rng import ImageNoiseSampler, ImageRNG
from modules.sampling.sigmas import ModelSchedule

RNG_SOURCES = {"CPU": "cpu", "GPU": "gpu", "NV": "nv"}


@dataclass
class SamplingRequest:
    """What one batch's run needs beyond the model: conditioning, noise seeds and sampler choice."""

    conds: list[Any]
    unconds: list[Any]
    shape: tuple[int, int, int]
    seeds: list[int]
    subseeds: list[int]
    steps: int
    sampler_name: str
    scheduler: str
    cfg_scale: float
    # img2img: start from these latents at a fraction of the schedule instead of pure noise
    init_latent: torch.Tensor | None = None
    denoising_strength: float = 1.0
    fix_steps: bool = False  # run exactly `steps` steps (hires pass; A1111's img2img_fix_steps option)
    noise_multiplier: float = 1.0
    image_cond: torch.Tensor | None = None
    is_hires: bool = False  # the hires fix's second pass: its schedule type is recorded as "Hires ..."
    # inpainting: 1 = repaint, [1 or B, 1, h, w] at latent size; the rest is held to init_latent
    latent_mask: torch.Tensor | None = None


def img2img_steps(steps: int, strength: float, fix_steps: bool) -> tuple[int, int]:
    """(schedule length, t_enc): A1111 runs the last t_enc + 1 steps of a schedule of that length."""
    if fix_steps:
        return int(steps / min(strength, 0.999)) if strength > 0 else 0, steps - 1
    return steps, int(min(strength, 0.999) * steps)


def steps_run(request: SamplingRequest) -> int:
    """How many sampler steps the request takes (what its prompt schedules count)."""
    if request.init_latent is None:
        return request.steps
    return img2img_steps(request.steps, request.denoising_strength, request.fix_steps)[1] + 1


def resolve(runtime: Any, sampler_name: str, scheduler: str | None) -> tuple[Any, Any]:
    return runtime.sampling_registry.resolve_sampler(sampler_name, scheduler)


def model_schedule(bundle: Any) -> ModelSchedule:
    return ModelSchedule.from_alphas_cumprod(bundle.alphas_cumprod, is_sdxl=bundle.arch is Arch.SDXL)


def sampler_options(sampler: Any, job: Any, settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword options for the sampler function, and the infotext pairs that record non-defaults."""
    options: dict[str, Any] = dict(sampler.options)
    infotext: dict[str, Any] = {}
    if sampler.eta_kind and sampler.accepts("eta"):
        default = settings["eta_ancestral"] if sampler.eta_kind == "ancestral" else settings["eta_ddim"]
        eta = default if job.eta is None else job.eta
        options["eta"] = eta
        if eta != (1.0 if sampler.eta_kind == "ancestral" else 0.0):
            infotext["Eta" if sampler.eta_kind == "ancestral" else "Eta DDIM"] = eta
    for key, label in (
        ("s_churn", "Sigma churn"),
        ("s_tmin", "Sigma tmin"),
        ("s_tmax", "Sigma tmax"),
        ("s_noise", "Sigma noise"),
    ):
        if not sampler.accepts(key):
            continue
        value = getattr(job, key)
        value = settings[key] if value is None else value
        if key == "s_tmax" and not value:
            value = float("inf")  # A1111 treats 0 as "no upper limit"
        options[key] = value
        if key in ("s_churn", "s_tmin") and value or key == "s_noise" and value != 1.0:
            infotext[label] = value
    return options, infotext


def sample(runtime: Any, plan: Any, request: SamplingRequest) -> torch.Tensor:
    bundle, job, settings = plan.bundle, plan.job, plan.settings
    sampler, schedule = resolve(runtime, request.sampler_name, request.scheduler)
    schedule_table = model_schedule(bundle)
    full_sigmas = sigmas = sampling_registry.build_sigmas(sampler, schedule, request.steps, schedule_table)
    if request.init_latent is not None:
        # A1111 compatibility: img2img runs the last t_enc + 1 steps of a schedule.
        steps, t_enc = img2img_steps(request.steps, request.denoising_strength, request.fix_steps)
        full_sigmas = sampling_registry.build_sigmas(sampler, schedule, steps, schedule_table)
        sigmas = full_sigmas[steps - t_enc - 1 :]
    ensd = int(settings["eta_noise_seed_delta"] or 0)
    rng = ImageRNG(
        request.shape,
        request.seeds,
        request.subseeds,
        job.subseed_strength,
        job.seed_resize_from_h,
        job.seed_resize_from_w,
        source=RNG_SOURCES[settings["randn_source"]],
        eta_noise_seed_delta=ensd,
        latent_factor=bundle.vae_scale_factor,
    )
    noise = rng.first()
    if request.init_latent is None:
        x = noise * sampling_registry.initial_noise_scale(sampler, float(sigmas[0]))
    else:
        if request.noise_multiplier != 1.0:
            plan.extra["Noise multiplier"] = request.noise_multiplier
        x = request.init_latent + noise * request.noise_multiplier * sigmas[0]
    options, infotext = sampler_options(sampler, job, settings)
    plan.extra.update(infotext)
    if not request.is_hires and (
        request.scheduler not in (None, "", "Automatic") or schedule.name != "uniform"
    ):
        plan.extra["Schedule type"] = schedule.label
    if ensd and sampler.uses_ensd:
        plan.extra["ENSD"] = ensd
    noise_sampler = (
        BrownianNoiseSampler(x, *sigma_range(sigmas), seeds=request.seeds)
        if sampler.brownian_noise
        else ImageNoiseSampler(rng)
    )
    time_ids = None
    if bundle.arch is Arch.SDXL:
        h, w = request.shape[1] * bundle.vae_scale_factor, request.shape[2] * bundle.vae_scale_factor
        time_ids = torch.tensor([[h, w, 0, 0, h, w]] * len(request.seeds), dtype=torch.float32)
    denoiser = CFGDenoiser(
        make_denoiser(sampler.denoiser, UNetApply(bundle), schedule_table, bundle.prediction_type),
        request.conds,
        request.unconds,
        request.cfg_scale,
        len(sigmas) - 1,
        image_cond=request.image_cond,
        time_ids=time_ids,
        should_stop=runtime.progress.should_stop,
        hooks=denoiser_hooks(runtime, request),
        dtype=bundle.dtype,
    )
    samples = run_sampler(runtime, plan, sampler, denoiser, x, sigmas, noise_sampler, options)
    if request.latent_mask is not None:
        samples = hold_unmasked(samples, request.init_latent, request.latent_mask)
    return samples


def hold_unmasked(x: torch.Tensor, init_latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep the original latent where the mask is 0 (inpainting with any model)."""
    return init_latent * (1 - mask) + x * mask


def denoiser_hooks(runtime: Any, request: SamplingRequest) -> DenoiserHooks:
    """The run's hooks: inpainting's latent blend first, then the extensions' (as A1111 orders them)."""
    extension_hooks = getattr(runtime, "denoiser_hooks", None) or DenoiserHooks()
    hooks = DenoiserHooks(list(extension_hooks.before_step), list(extension_hooks.after_cfg))
    if request.latent_mask is not None:
        init, mask = request.init_latent, request.latent_mask

        def blend(after: AfterCFG) -> None:
            after.denoised = hold_unmasked(after.denoised, init, mask)

        hooks.after_cfg.insert(0, blend)
    return hooks


def run_sampler(
    runtime: Any,
    plan: Any,
    sampler: Any,
    denoiser: CFGDenoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    noise_sampler: Any,
    options: dict[str, Any],
) -> torch.Tensor:
    progress, settings = runtime.progress, plan.settings
    total = len(sigmas) - 1
    latest = {"x": x}
    every = int(settings["show_progress_every_n_steps"]) if settings["live_previews_enable"] else 0

    def callback(info: dict[str, Any]) -> None:
        latest["x"] = info["x"]
        step = int(info["i"]) + 1
        progress.set_step(step, total)
        if every > 0 and step % every == 0 and step < total:
            progress.set_preview(approximate_preview(info["denoised"][0], plan.bundle.arch))

    progress.set_step(0, total)
    try:
        result = sampler.function(
            denoiser, x, sigmas, extra_args={}, callback=callback, noise_sampler=noise_sampler, **options
        )
    except SamplingInterrupted:
        result = latest["x"]
    return result
