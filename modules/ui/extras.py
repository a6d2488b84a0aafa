"""The Extras tab: resizing finished images (scale by / scale to, Lanczos or Nearest).

The result keeps the source's parameters text (A1111 carries PNG info over) and gets its own
"postprocessing" text chunk describing the resize, as A1111 writes it. The saved file is named by the
images pattern from that text (seed, prompt...), or numbered alone when the source has none.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from modules import images as image_files
from modules.processing import postprocess
from modules.runtime import Runtime
from modules.ui import results

SCALE_BY, SCALE_TO = "Scale by", "Scale to"


@dataclass
class ExtrasTab:
    image: gr.Image
    gallery: gr.Gallery


def settings_for(
    mode: str,
    scale: float,
    width: int,
    height: int,
    crop: bool,
    upscaler: str,
    upscaler_2: str = "None",
    visibility: float = 0.0,
) -> postprocess.UpscaleSettings:
    return postprocess.UpscaleSettings(
        mode=postprocess.ExtrasResize.SCALE_BY if mode == SCALE_BY else postprocess.ExtrasResize.SCALE_TO,
        scale=scale,
        width=width,
        height=height,
        crop=crop,
        upscaler_1=upscaler,
        upscaler_2=upscaler_2,
        upscaler_2_visibility=visibility,
    )


def run(
    runtime: Runtime, path: str | None, settings: postprocess.UpscaleSettings
) -> tuple[list[Image.Image], str]:
    """Resize one finished image; it keeps its parameters text and gets a "postprocessing" chunk."""
    if not path:
        raise gr.Error("Upload an image first.")
    with Image.open(path) as source:
        source.load()
        parameters, _ = image_files.read_info_from_image(source)
        try:
            out, info = postprocess.upscale(source, settings)
        except ValueError as error:
            raise gr.Error(str(error)) from error
    text = postprocess.info_text(info)
    saved = results.save_named(
        runtime,
        out,
        runtime.paths.outputs_dir / "extras-images",
        parameters,
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
            with gr.Tabs(overflow_behavior="wrap", elem_id="extras_resize_mode"):
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
                label="Upscaler 1",
                choices=postprocess.upscaler_names(),
                value="Lanczos",
                elem_id="extras_upscaler_1",
            )
            with gr.Row():
                upscaler_2 = gr.Dropdown(
                    label="Upscaler 2",
                    choices=["None", *postprocess.upscaler_names()],
                    value="None",
                    elem_id="extras_upscaler_2",
                )
                visibility = gr.Slider(
                    0.0,
                    1.0,
                    value=0.0,
                    step=0.001,
                    label="Upscaler 2 visibility",
                    elem_id="extras_upscaler_2_visibility",
                )
            submit = gr.Button("Generate", variant="primary", elem_id="extras_generate")
        with gr.Column(elem_id="extras_results"):
            gallery = gr.Gallery(
                label="Result",
                elem_id="extras_gallery",
                format="png",
                interactive=False,
                columns=2,
                object_fit="contain",
            )
            info = gr.HTML(elem_id="html_info_extras")
    mode = gr.State(SCALE_BY)
    by_tab.select(lambda: SCALE_BY, None, mode, show_progress="hidden", api_visibility="private")
    to_tab.select(lambda: SCALE_TO, None, mode, show_progress="hidden", api_visibility="private")

    def on_submit(
        path: str | None, m: str, s: float, w: float, h: float, c: bool, u: str, u2: str, v: float
    ) -> tuple:
        return run(runtime, path, settings_for(m, float(s), int(w), int(h), bool(c), u, u2, float(v)))

    submit.click(
        on_submit,
        [image, mode, scale, width, height, crop, upscaler, upscaler_2, visibility],
        [gallery, info],
        api_name="extras",
    )
    return ExtrasTab(image, gallery)
