"""The Extras tab: resizing finished images (scale by / scale to, Lanczos or Nearest).

The result keeps the source's parameters text (A1111 carries PNG info over) and gets its own
"postprocessing" text chunk describing the resize, as A1111 writes it.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from modules import images as image_files
from modules.runtime import Runtime

UPSCALERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}
SCALE_BY, SCALE_TO = "Scale by", "Scale to"


@dataclass
class ExtrasTab:
    image: gr.Image
    gallery: gr.Gallery


@dataclass(frozen=True)
class ResizeRequest:
    mode: str = SCALE_BY
    scale: float = 2.0
    width: int = 512
    height: int = 512
    crop: bool = True
    upscaler: str = "Lanczos"


def target_size(size: tuple[int, int], request: ResizeRequest) -> tuple[int, int]:
    """The size before any crop: "scale to" with crop covers the box, as A1111's upscale-to does."""
    w, h = size
    if request.mode == SCALE_BY:
        return max(1, int(w * request.scale)), max(1, int(h * request.scale))
    if not request.crop:
        return request.width, request.height
    ratio = max(request.width / w, request.height / h)
    return max(request.width, math.ceil(w * ratio)), max(request.height, math.ceil(h * ratio))


def resize(image: Image.Image, request: ResizeRequest) -> Image.Image:
    if request.upscaler not in UPSCALERS:
        raise ValueError(f"upscaler: unknown {request.upscaler!r}; choose one of {', '.join(UPSCALERS)}")
    out = image.resize(target_size(image.size, request), UPSCALERS[request.upscaler])
    if request.mode == SCALE_TO and request.crop:
        left, top = (out.width - request.width) // 2, (out.height - request.height) // 2
        out = out.crop((left, top, left + request.width, top + request.height))
    return out


def postprocess_text(request: ResizeRequest) -> str:
    """The "postprocessing" chunk, with A1111's key names."""
    if request.mode == SCALE_BY:
        size = f"Postprocess upscale by: {request.scale:g}"
    else:
        size = f"Postprocess upscale to: {request.width}x{request.height}"
        if request.crop:
            size += ", Postprocess crop to fit: True"
    return f"{size}, Postprocess upscaler: {request.upscaler}"


def run(runtime: Runtime, path: str | None, request: ResizeRequest) -> tuple[list[Image.Image], str]:
    if not path:
        raise gr.Error("Upload an image first.")
    with Image.open(path) as source:
        source.load()
        parameters, _ = image_files.read_info_from_image(source)
        out = resize(source.convert("RGB") if source.mode not in ("RGB", "RGBA") else source, request)
    text = postprocess_text(request)
    saved: Path = image_files.save_image(
        out,
        runtime.paths.outputs_dir / "extras-images",
        extension=runtime.options.get("samples_format"),
        infotext=parameters,
        extra_info={"postprocessing": text},
    )
    out.info["parameters"] = parameters or ""
    out.info["postprocessing"] = text
    shown = f"{text}\n{parameters}" if parameters else text
    return [out], f"<div class='infotext'>{html.escape(shown)}<br>Saved: {html.escape(saved.name)}</div>"


def build(runtime: Runtime) -> ExtrasTab:
    with gr.Row():
        with gr.Column(elem_id="extras_settings"):
            image = gr.Image(
                label="Source", type="filepath", image_mode=None, elem_id="extras_image", height=360
            )
            with gr.Tabs(elem_id="extras_resize_mode"):
                with gr.Tab(SCALE_BY, elem_id="extras_scale_by_tab") as by_tab:
                    scale = gr.Slider(
                        1.0, 8.0, value=2.0, step=0.05, label="Resize", elem_id="extras_upscaling_resize"
                    )
                with gr.Tab(SCALE_TO, elem_id="extras_scale_to_tab") as to_tab:
                    with gr.Row():
                        width = gr.Slider(
                            64, 8192, value=512, step=8, label="Width", elem_id="extras_upscaling_resize_w"
                        )
                        height = gr.Slider(
                            64, 8192, value=512, step=8, label="Height", elem_id="extras_upscaling_resize_h"
                        )
                    crop = gr.Checkbox(label="Crop to fit", value=True, elem_id="extras_upscaling_crop")
            upscaler = gr.Dropdown(
                label="Upscaler 1", choices=list(UPSCALERS), value="Lanczos", elem_id="extras_upscaler_1"
            )
            submit = gr.Button("Generate", variant="primary", elem_id="extras_generate")
        with gr.Column(elem_id="extras_results"):
            gallery = gr.Gallery(
                label="Result", elem_id="extras_gallery", format="png", interactive=False, columns=2
            )
            info = gr.HTML(elem_id="html_info_extras")
    mode = gr.State(SCALE_BY)
    by_tab.select(lambda: SCALE_BY, None, mode, show_progress="hidden", api_visibility="private")
    to_tab.select(lambda: SCALE_TO, None, mode, show_progress="hidden", api_visibility="private")

    def on_submit(path: str | None, m: str, s: float, w: float, h: float, c: bool, u: str) -> tuple:
        return run(runtime, path, ResizeRequest(m, float(s), int(w), int(h), bool(c), u))

    submit.click(
        on_submit, [image, mode, scale, width, height, crop, upscaler], [gallery, info], api_name="extras"
    )
    return ExtrasTab(image, gallery)
