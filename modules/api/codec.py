"""Images in and out of JSON: base64 decoding of request images, encoding of result images.

Follows A1111's API: a ``data:image/...;base64,`` prefix is allowed on input; output is raw base64
(no prefix) in the "File format for images" setting, PNG with its text chunks (the "parameters"
infotext), JPEG/WebP with the infotext as EXIF UserComment.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import HTTPException
from PIL import Image

from modules.images import SUPPORTED_EXTENSIONS, encode

JPEG_QUALITY = 80  # A1111's "jpeg_quality" default, which its API uses for JPEG and WebP
# Decoded pixels are the memory an upload costs (a 560 kB PNG can declare 12000x12000): at most this many
# decodes at once, each checked against the pixel limit before a pixel is decoded.
_DECODES = threading.BoundedSemaphore(2)


def json_body_problem(body: bytes, data: Any) -> str | None:
    """Why a request body is not strict JSON (RFC 8259), naming where; None when it is. ``data`` is the
    body as Python's parser read it (the framework's own parse, so a body is parsed once), which accepts
    NaN, Infinity, numbers that overflow to infinity and lone surrogates, none of which a client means
    or the app can use."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"body: not UTF-8 text (byte 0x{body[error.start]:02x} at offset {error.start})"
    for path, value in _leaves(data, "body"):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{path}: must be a finite number (got {value})"
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                code = ord(value[error.start])
                return f"{path}: text holds a lone surrogate (\\u{code:04x}), which is not Unicode text"
    return None


def _leaves(data: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every value in a parsed JSON document with its path (body.a[0].b); keys count as text too."""
    stack = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                yield f"{where} key", key
                stack.append((f"{where}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
        else:
            yield where, value


def max_pixels(options: Any) -> int:
    """The most pixels a request image may declare (the "upload_max_megapixels" setting)."""
    return int(float(options.get("upload_max_megapixels")) * 1_000_000)


def decode_image(data: str, field: str, limit: int) -> Image.Image:
    """A request image of at most ``limit`` pixels; HTTP 400 naming the field when it is not a decodable
    image, 413 when it declares more pixels (checked from its header, before anything is decoded)."""
    text = data.strip()
    if text.startswith(("http://", "https://")):
        # A1111 can download image URLs; this app runs offline, so it says so instead of hanging.
        raise HTTPException(status_code=400, detail=f"{field}: image URLs are not supported (offline)")
    if text.startswith("data:image/"):
        text = text.partition(",")[2]
    try:
        # Not validating, as A1111: whitespace/newlines inside the base64 text are skipped.
        raw = base64.b64decode(text)
    except (binascii.Error, ValueError) as error:
        raise HTTPException(status_code=400, detail=f"{field}: invalid base64 ({error})") from error
    del text
    allowed = f"at most {limit / 1e6:g} megapixels are accepted (setting upload_max_megapixels)"
    try:
        try:
            image = Image.open(io.BytesIO(raw))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            # PIL's own check, at the same limit (the runtime sets it), fired while reading the header
            raise HTTPException(status_code=413, detail=f"{field}: {error}; {allowed}") from error
        width, height = image.size
        if width * height > limit:
            raise HTTPException(
                status_code=413,
                detail=f"{field}: the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
                f"{allowed}",
            )
        with _DECODES:
            image.load()
    except HTTPException:
        raise
    except (ValueError, OSError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        reason = str(error).split(" <_io.")[0]  # PIL names its in-memory buffer object; say what matters
        raise HTTPException(status_code=400, detail=f"{field}: not a readable image ({reason})") from error
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
