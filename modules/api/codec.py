"""Images in and out of JSON: base64 decoding of request images, encoding of result images.

Follows A1111's API: a ``data:image/...;base64,`` prefix is allowed on input; output is raw base64
(no prefix) in the "File format for images" setting, PNG with its text chunks (the "parameters"
infotext), JPEG/WebP with the infotext as EXIF UserComment.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping

from fastapi import HTTPException
from PIL import Image, PngImagePlugin

from modules.images import JPEG_MAX_EXIF, exif_user_comment

JPEG_QUALITY = 80  # A1111's "jpeg_quality" default, which its API uses for JPEG and WebP
_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}


def decode_image(data: str, field: str) -> Image.Image:
    """A request image; HTTP 400 naming the field when it is not a decodable image."""
    text = data.strip()
    if text.startswith(("http://", "https://")):
        # A1111 can download image URLs; this app runs offline, so it says so instead of hanging.
        raise HTTPException(status_code=400, detail=f"{field}: image URLs are not supported (offline)")
    if text.startswith("data:image/"):
        text = text.partition(",")[2]
    try:
        # Not validating, as A1111: whitespace/newlines inside the base64 text are skipped.
        image = Image.open(io.BytesIO(base64.b64decode(text)))
        image.load()
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError) as error:
        raise HTTPException(status_code=400, detail=f"{field}: invalid encoded image ({error})") from error
    return image


def encode_image(image: Image.Image, file_format: str = "png", text: Mapping[str, str] | None = None) -> str:
    """Base64 of the image in ``file_format``; ``text`` items become PNG chunks ("parameters" -> EXIF)."""
    fmt = _FORMATS.get(file_format.lower(), "PNG")
    text = dict(text or {})
    buffer = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        image.save(buffer, format="PNG", pnginfo=info if text else None)
    else:
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        exif = exif_user_comment(text["parameters"]) if text.get("parameters") else b""
        # A JPEG EXIF segment holds at most 64 KiB; a longer infotext is left out rather than failing.
        extra = {"exif": exif} if exif and (fmt != "JPEG" or len(exif) <= JPEG_MAX_EXIF) else {}
        image.save(buffer, format=fmt, quality=JPEG_QUALITY, **extra)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def text_chunks(image: Image.Image) -> dict[str, str]:
    """The string items of ``image.info`` (what A1111 copies into the PNG it returns)."""
    return {
        key: value for key, value in image.info.items() if isinstance(key, str) and isinstance(value, str)
    }
