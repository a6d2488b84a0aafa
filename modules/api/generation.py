"""txt2img/img2img requests -> ``GenerationJob``, and ``GenerationResult`` -> A1111's response body.

Everything a request can get wrong is checked here, before the job waits for the queue, and reported as
an HTTP error naming the field: unknown sampler, schedule type, checkpoint or setting (404/422), bad
images (400), out-of-range values (422, from ``GenerationJob.validate``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from PIL import Image

from modules.api import codec
from modules.api.models import (
    GenerationRequest,
    StableDiffusionProcessingImg2Img,
    StableDiffusionProcessingTxt2Img,
)
from modules.fields import FieldError
from modules.infotext import infotext_to_settings, parse_infotext
from modules.processing.job import JOB_FIELDS, GenerationJob, GenerationResult
from modules.processing.pipeline import VERSION
from modules.sampling.registry import AUTOMATIC

if TYPE_CHECKING:
    from modules.runtime import Runtime

# Settings A1111 never lets the API change (its restrict_api options): where files are written.
_RESTRICTED_SETTING_PREFIX = "outdir_"


def not_found(field: str, message: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{field}: {message}")


def invalid(field: str, message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=f"{field}: {message}")


# --- infotext ----------------------------------------------------------------------------------------


def apply_infotext(runtime: Runtime, request: GenerationRequest) -> None:
    """A1111 1.7+: fields the client did not set are taken from the ``infotext`` parameters text.

    Settings it names (Clip skip, model, RNG...) join override_settings unless the request has them;
    settings this app does not have, and a model it cannot find, are dropped (A1111 drops an unknown
    model silently too).
    """
    if not request.infotext:
        return
    settings = infotext_to_settings(parse_infotext(request.infotext), runtime.options.definitions)
    explicit = request.model_fields_set
    for name, value in settings.items():
        if name in type(request).model_fields and name not in explicit and name != "override_settings":
            setattr(request, name, value)
    overrides = dict(request.override_settings or {})
    for key, value in settings.get("override_settings", {}).items():
        if key in overrides or key not in runtime.options.definitions:
            continue
        if key == "sd_model_checkpoint" and not _checkpoint_exists(runtime, str(value)):
            continue
        overrides[key] = value
    request.override_settings = overrides


def _checkpoint_exists(runtime: Runtime, name: str) -> bool:
    try:
        runtime.models.find(name)
    except KeyError:
        return False
    return True


# --- request -> job ----------------------------------------------------------------------------------


def resolve_sampler(
    runtime: Runtime, name: str, scheduler: str | None, fields: tuple[str, str]
) -> tuple[str, str]:
    """(sampler name, schedule type label) as A1111 stores them; 404 naming the sampler or scheduler
    field (``fields``) when unknown.

    A1111 1.10 silently replaces an unknown sampler with DPM++ 2M and an unknown schedule type with
    Automatic; older versions answered 404 "Sampler not found", which we keep: a typo should not
    produce a different picture.
    """
    registry = runtime.sampling_registry
    try:
        requested = registry.schedule_type(scheduler)
    except ValueError as error:
        raise not_found(fields[1], str(error)) from error
    try:
        sampler, schedule = registry.resolve_sampler(name, scheduler)
    except ValueError as error:
        raise not_found(fields[0], str(error)) from error
    named_alone = any(name.strip().lower() == n.lower() for n in (sampler.name, *sampler.aliases))
    if named_alone and requested.name == AUTOMATIC:
        return sampler.name, "Automatic"
    # A1111 reverts a choice of the sampler's own default schedule to "Automatic" (for the samplers
    # that have one; A1111's Uniform-by-default samplers keep an explicit "Uniform").
    if schedule.name == sampler.default_schedule and sampler.default_schedule != "uniform":
        return sampler.name, "Automatic"
    return sampler.name, schedule.label


def checked_overrides(runtime: Runtime, overrides: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    """override_settings / POST /options values, each checked against its setting's declaration.

    A1111 fails with a KeyError (HTTP 500) on a setting it does not know; we answer 422 naming it, and
    404 for a checkpoint or VAE that does not exist. Output folders are silently skipped, as A1111's
    restrict_api does, so a client cannot pick where the server writes files.
    """
    wanted = {k: v for k, v in (overrides or {}).items() if not k.startswith(_RESTRICTED_SETTING_PREFIX)}
    try:
        return runtime.options.checked(wanted, known_only=True)
    except FieldError as error:
        info = runtime.options.definitions.get(error.name)
        status = 404 if info is not None and info.lookup in ("checkpoint", "vae") else 422
        raise HTTPException(status_code=status, detail=f"{field}: {error}") from error


def _job_values(runtime: Runtime, request: GenerationRequest, mode: str) -> dict[str, Any]:
    """The request's job fields for ``mode``, as the declarations name them; null means the job's default."""
    apply_infotext(runtime, request)
    values: dict[str, Any] = {}
    for name, spec in JOB_FIELDS.items():
        if not spec.api or mode not in spec.modes:
            continue
        value = getattr(request, name)
        values[name] = spec.default if value is None and not spec.nullable else value
    # sampler_index is the deprecated name; A1111 uses it when sampler_name is empty.
    values["sampler_name"], values["scheduler"] = resolve_sampler(
        runtime,
        request.sampler_name or request.sampler_index,
        request.scheduler,
        ("sampler_name", "scheduler"),
    )
    values.update(
        # A1111's "not set" is -1 here; ours is 0.
        seed_resize_from_h=max(0, request.seed_resize_from_h),
        seed_resize_from_w=max(0, request.seed_resize_from_w),
        override_settings=checked_overrides(runtime, request.override_settings, "override_settings"),
        # The API saves only when asked: A1111 ignores do_not_save_* here and uses save_images.
        do_not_save_samples=not request.save_images,
        do_not_save_grid=not request.save_images,
        **_script_fields(runtime, request),
    )
    return values


def _script_fields(runtime: Runtime, request: GenerationRequest) -> dict[str, Any]:
    """The selected script and always-on scripts' args, checked against the scripts of the tab (422)."""
    is_img2img = isinstance(request, StableDiffusionProcessingImg2Img)
    if request.script_name:
        try:
            runtime.scripts.find(request.script_name, is_img2img)
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from error
    for title in request.alwayson_scripts:
        try:
            runtime.scripts.find(title, is_img2img, selectable=False)
        except ValueError as error:
            raise invalid("alwayson_scripts", f"always on script {title!r} not found") from error
    return {
        "script_name": request.script_name or None,
        "script_args": list(request.script_args),
        "alwayson_scripts": dict(request.alwayson_scripts),
    }


def txt2img_job(runtime: Runtime, request: StableDiffusionProcessingTxt2Img) -> GenerationJob:
    values = _job_values(runtime, request, "txt2img")
    values.update(_hires_choices(runtime, request))
    return _validated(runtime, GenerationJob(**values))


def _hires_choices(runtime: Runtime, request: StableDiffusionProcessingTxt2Img) -> dict[str, Any]:
    """Second-pass sampler and schedule, resolved as the first pass's. "Use same ..." and null mean not
    set: the first pass's sampler or schedule type is used (A1111 takes the first pass's scheduler when
    hr_scheduler is null), unless an old combined name ("DPM++ 2M Karras") carries its schedule."""
    sampler = JOB_FIELDS["hr_sampler_name"].check(request.hr_sampler_name)
    scheduler = JOB_FIELDS["hr_scheduler"].check(request.hr_scheduler)
    fields: dict[str, Any] = {"hr_sampler_name": None, "hr_scheduler": scheduler}
    if sampler:
        fields["hr_sampler_name"], resolved = resolve_sampler(
            runtime, sampler, scheduler, ("hr_sampler_name", "hr_scheduler")
        )
        if scheduler is not None or resolved != "Automatic":
            fields["hr_scheduler"] = resolved
    elif scheduler:
        try:
            fields["hr_scheduler"] = runtime.sampling_registry.schedule_type(scheduler).label
        except ValueError as error:
            raise not_found("hr_scheduler", str(error)) from error
    return fields


def img2img_job(runtime: Runtime, request: StableDiffusionProcessingImg2Img) -> GenerationJob:
    if request.init_images is None:
        raise not_found("init_images", "Init image not found")  # A1111's answer to a missing list
    if not request.init_images:
        raise invalid("init_images", "at least one image is required")
    values = _job_values(runtime, request, "img2img")
    limit = codec.max_pixels(runtime.options)
    values["init_images"] = [
        codec.decode_image(data, f"init_images[{index}]", limit)
        for index, data in enumerate(request.init_images)
    ]
    for name in ("mask", "latent_mask"):  # A1111 passes latent_mask on undecoded; we read it as a mask
        data = getattr(request, name)
        values[name] = codec.decode_image(data, name, limit) if data else None
    # A1111's mask_blur sets both blur directions; without it they default to 4 each.
    values["mask_blur"] = request.mask_blur if request.mask_blur is not None else request.mask_blur_x
    return _validated(runtime, GenerationJob(**values))


def _validated(runtime: Runtime, job: GenerationJob) -> GenerationJob:
    """Every field checked against its declaration (names resolved by the runtime): 422 naming it."""
    try:
        job.validate(runtime.resolvers())
    except FieldError as error:
        status = 404 if JOB_FIELDS[error.name].lookup in ("checkpoint",) else 422
        raise HTTPException(status_code=status, detail=str(error)) from error
    return job


# --- result -> response ------------------------------------------------------------------------------


def encode_images(images: list[Image.Image], infotexts: list[str], settings: Mapping[str, Any]) -> list[str]:
    file_format = str(settings["samples_format"])
    with_info = bool(settings["enable_pnginfo"])
    return [
        codec.encode_image(image, file_format, {"parameters": text} if with_info else None)
        for image, text in zip(images, infotexts, strict=True)
    ]


def info_json(job: GenerationJob, result: GenerationResult) -> str:
    """A1111's ``Processed.js()``: our result summary plus the keys A1111 clients read."""
    info = dict(result.info)
    defaults = {
        "subseed_strength": job.subseed_strength,
        "width": job.width,
        "height": job.height,
        "sampler_name": job.sampler_name,
        "cfg_scale": job.cfg_scale,
        "steps": job.steps,
        "batch_size": job.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": job.seed_resize_from_w or -1,
        "seed_resize_from_h": job.seed_resize_from_h or -1,
        "denoising_strength": job.denoising_strength,
        "extra_generation_params": dict(job.extra_generation_params),
        "styles": list(job.styles),
        "job_timestamp": dt.datetime.now().strftime("%Y%m%d%H%M%S"),
        "is_using_inpainting_conditioning": False,
        "version": VERSION,  # A1111 gives its program version; ours is the one the parameters text says
    }
    for key, value in defaults.items():
        info.setdefault(key, value)
    return json.dumps(info, default=str)


def echo_parameters(request: GenerationRequest) -> dict[str, Any]:
    """The request as A1111 echoes it (after infotext was applied); images only if asked for."""
    parameters = request.model_dump()
    if isinstance(request, StableDiffusionProcessingImg2Img) and not request.include_init_images:
        parameters["init_images"] = None
        parameters["mask"] = None
    return parameters
