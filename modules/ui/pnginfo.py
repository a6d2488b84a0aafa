"""The PNG Info tab: drop an image, read its generation parameters and other text chunks, and send
them to txt2img / img2img / inpaint / extras."""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from modules import images as image_files


@dataclass
class PngInfoTab:
    image: gr.Image
    infotext: gr.Textbox
    send_txt2img: gr.Button
    send_img2img: gr.Button
    send_inpaint: gr.Button
    send_extras: gr.Button


def read_info(path: str | None) -> tuple[str, str]:
    """(html listing parameters and other items, the parameters text) of an image file."""
    if not path:
        return "", ""
    with Image.open(path) as image:
        parameters, items = image_files.read_info_from_image(image)
    rows = []
    if parameters:
        rows.append(("parameters", parameters))
    rows += [
        (str(k), v.decode("utf-8", "ignore") if isinstance(v, bytes) else str(v)) for k, v in items.items()
    ]
    if not rows:
        return "<div><p>Nothing found in the image.</p></div>", ""
    body = "".join(
        f"<div><p><b>{html.escape(k)}</b></p><p class='infotext'>{html.escape(v)}</p></div>" for k, v in rows
    )
    return body, parameters or ""


def build() -> PngInfoTab:
    with gr.Row():
        with gr.Column():
            # type="filepath" with image_mode=None: Gradio hands over the uploaded file untouched, so its
            # text chunks and EXIF survive (a PIL conversion would drop them).
            image = gr.Image(
                label="Source", type="filepath", image_mode=None, elem_id="pnginfo_image", height=400
            )
        with gr.Column():
            info = gr.HTML(elem_id="pnginfo_html_info")
            infotext = gr.Textbox(visible=False, elem_id="pnginfo_generation_info")
            with gr.Row():
                send_txt2img = gr.Button("Send to txt2img", elem_id="pnginfo_send_to_txt2img")
                send_img2img = gr.Button("Send to img2img", elem_id="pnginfo_send_to_img2img")
                send_inpaint = gr.Button("Send to inpaint", elem_id="pnginfo_send_to_inpaint")
                send_extras = gr.Button("Send to extras", elem_id="pnginfo_send_to_extras")
    image.change(read_info, image, [info, infotext], api_name="pnginfo", show_progress="hidden")
    return PngInfoTab(image, infotext, send_txt2img, send_img2img, send_inpaint, send_extras)
