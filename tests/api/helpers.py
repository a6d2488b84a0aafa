"""Helpers shared by the API tests: images as base64, and live servers started as users start them."""

from __future__ import annotations

import base64
import io
import subprocess
from pathlib import Path

from PIL import Image, PngImagePlugin


def b64_png(image: Image.Image, text: dict[str, str] | None = None, data_url: bool = False) -> str:
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"data:image/png;base64,{encoded}" if data_url else encoded


def decode(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


def gradient(width: int = 64, height: int = 64) -> Image.Image:
    """A test picture whose resizes differ by resampling filter."""
    image = Image.new("RGB", (width, height))
    image.putdata(
        [((x * 37) % 256, (y * 53) % 256, ((x ^ y) * 11) % 256) for y in range(height) for x in range(width)]
    )
    return image


def start_live_server(args: list[str], data_dir: Path, port: int) -> subprocess.Popen:
    from tests.ui.conftest import start_server, wait_for_http

    proc = start_server(args, data_dir, port)
    try:
        # /docs is public even with --api-auth, and exists only once the API is attached.
        wait_for_http(f"http://127.0.0.1:{port}/docs", proc, timeout=180)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
