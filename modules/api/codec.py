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
from PIL import Image

from modules.images import SUPPORTED_EXTENSIONS, encode

JPEG_QUALITY = 80  # A1111's "jpeg_quality" default, which its API uses for JPEG and WebP


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
    """Base64 of the image in ``file_format``, encoded exactly as saved files are ("parameters" -> EXIF)."""
    fmt = SUPPORTED_EXTENSIONS.get(file_format.lower(), "PNG")
    items = dict(text or {})
    parameters = items.pop("parameters", None) or None
    data = encode(image, fmt, parameters, items if fmt == "PNG" else {}, JPEG_QUALITY)
    return base64.b64encode(data).decode("ascii")


def text_chunks(image: Image.Image) -> dict[str, str]:
    """The string items of ``image.info`` (what A1111 copies into the PNG it returns)."""
    return {
        key: value for key, value in image.info.items() if isinstance(key, str) and isinstance(value, str)
    }
