"""Postprocessing of finished images (the Extras tab and the /extra-* endpoints): Lanczos and Nearest
resizing with A1111's size arithmetic, second-upscaler blending and "Postprocess ..." info text.

A1111 quirks kept on purpose (users compare outputs): the target size is rounded down to a multiple of
8; "Nearest" first scales with nearest-neighbour then fixes the size with Lanczos; "Scale to" with crop
pastes the scaled image centred on a black canvas of exactly the requested size.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from modules.infotext import quote

MAX_SIDE = 16384  # refuse outputs no client can have meant (a 16k x 16k RGB image is 768 MB)

_RESAMPLE = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}


class UnknownUpscaler(ValueError):
    """An upscaler name this app does not have; the message names the field and the known names."""


class ExtrasResize(enum.IntEnum):
    """How Extras sizes its result; the values are A1111's API codes (``resize_mode``)."""

    SCALE_BY = 0  # by ``scale``
    SCALE_TO = 1  # to ``width`` x ``height``


@dataclass(frozen=True)
class UpscaleSettings:
    mode: ExtrasResize
    scale: float
    width: int
    height: int
    crop: bool
    upscaler_1: str
    upscaler_2: str
    upscaler_2_visibility: float


def check_upscaler(name: str, field: str) -> str | None:
    """The upscaler to use, None for "None"; UnknownUpscaler naming the field for names this app lacks."""
    if name == "None":
        return None
    if name not in _RESAMPLE:
        known = ", ".join(["None", *_RESAMPLE])
        raise UnknownUpscaler(f"{field}: upscaler {name!r} not found; known: {known}")
    return name


def upscaler_names() -> list[str]:
    return list(_RESAMPLE)


def upscale(image: Image.Image, settings: UpscaleSettings) -> tuple[Image.Image, dict[str, object]]:
    """The processed image and its "Postprocess ..." items (empty when upscaler_1 is "None")."""
    first = check_upscaler(settings.upscaler_1, "upscaler_1")
    second = check_upscaler(settings.upscaler_2, "upscaler_2")
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    info: dict[str, object] = {}
    if first is None:
        return image, info  # A1111 skips the whole upscale step, second upscaler included
    result = _scaled(image, first, settings, info)
    info["Postprocess upscaler"] = first
    if second is not None and settings.upscaler_2_visibility > 0:
        other = _scaled(image, second, settings, {})
        if other.mode != result.mode:
            other = other.convert(result.mode)
        result = Image.blend(result, other, settings.upscaler_2_visibility)
        info["Postprocess upscaler 2"] = second
    return result, info


def _scaled(image: Image.Image, name: str, settings: UpscaleSettings, info: dict[str, object]) -> Image.Image:
    if settings.mode == ExtrasResize.SCALE_TO:
        scale = max(settings.width / image.width, settings.height / image.height)
        info["Postprocess upscale to"] = f"{settings.width}x{settings.height}"
    else:
        scale = settings.scale
        info["Postprocess upscale by"] = scale
    result = _resize(image, scale, _RESAMPLE[name])
    if settings.mode == ExtrasResize.SCALE_TO and settings.crop:
        canvas = Image.new("RGB", (settings.width, settings.height))
        canvas.paste(
            result, (settings.width // 2 - result.width // 2, settings.height // 2 - result.height // 2)
        )
        result = canvas
        info["Postprocess crop to"] = f"{result.width}x{result.height}"
    return result


def _resize(image: Image.Image, scale: float, resample: Image.Resampling) -> Image.Image:
    # A1111's Upscaler.upscale: target rounded down to a multiple of 8; one model pass at the plain
    # scale (skipped when already big enough and scale != 1), then Lanczos to the exact target.
    target = (int(image.width * scale // 8 * 8), int(image.height * scale // 8 * 8))
    if min(target) < 1 or max(target) > MAX_SIDE:
        raise ValueError(
            f"upscaling_resize: result {target[0]}x{target[1]} must be 8..{MAX_SIDE} px per side"
        )
    if not (image.width >= target[0] and image.height >= target[1] and scale != 1):
        image = image.resize((int(image.width * scale), int(image.height * scale)), resample=resample)
    if image.size != target:
        image = image.resize(target, resample=Image.Resampling.LANCZOS)
    return image


def info_text(info: dict[str, object]) -> str:
    """The items as one parameters line, written as A1111's extras tab writes it."""
    return ", ".join(key if key == value else f"{key}: {quote(value)}" for key, value in info.items())


def run_all(
    images: list[Image.Image], settings: UpscaleSettings, read_info: Callable[[Image.Image], dict[str, str]]
) -> tuple[list[Image.Image], str]:
    """Upscale every image; each keeps its own text chunks plus "postprocessing" (A1111's PNG items)."""
    outputs, text = [], ""
    for image in images:
        chunks = read_info(image)
        result, info = upscale(image, settings)
        text = info_text(info)
        result.info = {**chunks, "postprocessing": text}
        outputs.append(result)
    return outputs, text
