"""The results column of a generating tab: progress, live preview, gallery, parameters text and the
buttons under it (open folder, save, zip, send to img2img / inpaint / extras).

"Save" and "Zip" write the shown images with their parameters text to outputs/save (plus log.csv,
A1111's columns), named by the same pattern as generated images, and offer them for download.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from modules import images as image_files
from modules import infotext as infotext_format
from modules import output_paths
from modules.runtime import Runtime
from modules.ui import icons

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
GALLERY_HEIGHT = 512  # px; fixed, so the results column keeps its layout from start to result


@dataclass
class Results:
    progress: gr.HTML
    preview: gr.Image
    gallery: gr.Gallery
    info: gr.HTML
    infotext: gr.Textbox  # the selected image's parameters text, as stored in its PNG
    generation: gr.State  # {"infotexts": [...], "seeds": [...]} of the last generation
    selected: gr.State  # index of the selected gallery image, -1 for none
    open_folder: gr.Button
    save: gr.Button
    zip: gr.Button
    send_img2img: gr.Button
    send_inpaint: gr.Button
    send_extras: gr.Button
    download: gr.File
    log: gr.HTML


def info_html(text: str, comments: Sequence[str] = ()) -> str:
    """The parameters text, then the job's notes for the user (A1111's "comments") as warnings."""
    notes = "".join(f"<p class='comments'>{html.escape(comment)}</p>" for comment in comments)
    return f"<div class='infotext'>{html.escape(text).replace(chr(10), '<br>')}</div>{notes}"


def is_local(runtime: Runtime) -> bool:
    """Opening a folder happens on the server's desktop, so it is offered only to a local user."""
    return runtime.args.server_name in LOCAL_HOSTS and not runtime.args.share


def build(runtime: Runtime, tab: str) -> Results:
    # The progress bar and the live preview lie over the gallery (style.css), the preview at its size,
    # while a job runs: the page does not move when they appear, and the picture grows where the
    # result will be shown. The gallery's height is fixed for the same reason.
    with gr.Column(elem_id=f"{tab}_gallery_container", elem_classes="results-gallery"):
        progress = gr.HTML(elem_id=f"{tab}_progress", elem_classes="progress-overlay")
        # "contain" shows a non-square image or an X/Y/Z grid whole instead of its centre square.
        gallery = gr.Gallery(
            label="Output",
            elem_id=f"{tab}_gallery",
            columns=4,
            format="png",
            interactive=False,
            object_fit="contain",
            height=GALLERY_HEIGHT,
        )
        preview = gr.Image(
            label="Live preview",
            visible=False,
            format="png",
            elem_id=f"{tab}_preview",
            elem_classes="live-preview",
            interactive=False,
            show_label=False,
            buttons=[],
        )
    with gr.Row(elem_id=f"image_buttons_{tab}", elem_classes="image-buttons"):
        open_folder = icons.button("open_folder", f"{tab}_open_folder", visible=is_local(runtime))
        save = icons.button("save", f"save_{tab}", "Save")
        zip_button = icons.button("zip", f"save_zip_{tab}", "Zip")
        send_img2img = icons.button("send_img2img", f"{tab}_send_to_img2img", "img2img")
        send_inpaint = icons.button("send_inpaint", f"{tab}_send_to_inpaint", "inpaint")
        send_extras = icons.button("send_extras", f"{tab}_send_to_extras", "extras")
    download = gr.File(
        None, file_count="multiple", interactive=False, visible=False, elem_id=f"download_files_{tab}"
    )
    info = gr.HTML(elem_id=f"html_info_{tab}")
    log = gr.HTML(elem_id=f"html_log_{tab}")
    infotext = gr.Textbox(visible=False, elem_id=f"generation_info_{tab}")
    results = Results(
        progress,
        preview,
        gallery,
        info,
        infotext,
        gr.State({"infotexts": [], "seeds": []}),
        gr.State(-1),
        open_folder,
        save,
        zip_button,
        send_img2img,
        send_inpaint,
        send_extras,
        download,
        log,
    )
    wire(runtime, tab, results)
    return results


def wire(runtime: Runtime, tab: str, r: Results) -> None:
    private = {"show_progress": "hidden", "api_visibility": "private"}

    def select(generation: dict, event: gr.SelectData) -> tuple[int, str, str]:
        text = pick(generation["infotexts"], event.index)
        return event.index, info_html(text) + generation.get("performance", ""), text

    r.gallery.select(select, r.generation, [r.selected, r.info, r.infotext], **private)
    r.open_folder.click(lambda: open_folder(output_folder(runtime, tab)), None, None, **private)
    for button, make_zip in ((r.save, False), (r.zip, True)):
        button.click(
            lambda gallery, generation, index, z=make_zip: save_files(runtime, gallery, generation, index, z),
            [r.gallery, r.generation, r.selected],
            [r.download, r.log],
            **private,
        )


def pick(items: list[Any], index: int | None) -> Any:
    """The selected item, or the first when nothing (or something out of range) is selected."""
    if not items:
        return ""
    return items[index] if index is not None and 0 <= index < len(items) else items[0]


def output_folder(runtime: Runtime, tab: str) -> Path:
    custom = runtime.options.get(f"outdir_{tab}_samples") if tab in ("txt2img", "img2img") else ""
    return output_paths.output_folder(runtime.paths.outputs_dir, custom, f"{tab}-images")


def open_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        os.startfile(folder)  # noqa: S606 - the user's own file manager, on the user's own machine
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    try:
        subprocess.Popen([opener, str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as error:
        raise gr.Error(f"Could not open {folder}: {error}") from error


def gallery_paths(gallery: list[Any] | None) -> list[str]:
    """File paths of a Gallery value (items are (path, caption) pairs, or dicts from older clients)."""
    paths = []
    for item in gallery or []:
        entry = item[0] if isinstance(item, list | tuple) else item
        if isinstance(entry, dict):
            entry = entry.get("path") or entry.get("image", {}).get("path")
        paths.append(str(entry))
    return paths


def save_files(
    runtime: Runtime, gallery: list[Any] | None, generation: dict, index: int, make_zip: bool
) -> tuple[dict, str]:
    """Save the selected image (or all when none is selected) to outputs/save, as A1111's Save button."""
    paths = gallery_paths(gallery)
    texts = generation.get("infotexts", [])
    chosen = [index] if 0 <= index < len(paths) else range(len(paths))
    folder = runtime.paths.outputs_dir / "save"
    saved = [save_one(runtime, folder, paths[i], texts[i] if i < len(texts) else "") for i in chosen]
    if make_zip and saved:
        saved = [make_zip_file(folder, saved)]
    names = ", ".join(p.name for p in saved)
    return gr.update(
        value=[str(p) for p in saved], visible=bool(saved)
    ), f"<p>Saved: {html.escape(names)}</p>"


def name_fields(params: dict[str, Any], image: Image.Image) -> image_files.NameFields:
    """What a file-name pattern needs, read back from an image's parsed parameters text; [width] and
    [height] are the image's own size, as in A1111."""

    def number(key: str, kind: type) -> Any:
        try:
            return kind(params[key])
        except (KeyError, TypeError, ValueError):
            return None

    return image_files.NameFields(
        seed=number("Seed", int),
        prompt=str(params.get("Prompt", "")),
        negative_prompt=str(params.get("Negative prompt", "")),
        model_name=str(params.get("Model", "")),
        model_hash=str(params.get("Model hash", "")),
        steps=number("Steps", int),
        cfg_scale=number("CFG scale", float),
        width=image.width,
        height=image.height,
        sampler=str(params.get("Sampler", "")),
        scheduler=str(params.get("Schedule type", "")),
        clip_skip=number("Clip skip", int),
        denoising_strength=number("Denoising strength", float),
    )


def save_named(runtime: Runtime, image: Image.Image, folder: Path, text: str | None, **kwargs: Any) -> Path:
    """Save ``image`` named as a generated image is (the images pattern, filled from its parameters
    text); one with no parameters text gets a number alone, as A1111's extras short names."""
    settings = runtime.options.snapshot()
    params = infotext_format.parse_infotext(text) if text else None
    return image_files.save_image(
        image,
        folder,
        extension=settings["samples_format"],
        infotext=text or None,
        fields=name_fields(params, image) if params else None,
        pattern=image_files.samples_pattern(settings) if params else "",
        add_number=bool(settings["save_images_add_number"]),
        **kwargs,
    )


def save_one(runtime: Runtime, folder: Path, path: str, text: str) -> Path:
    with Image.open(path) as image:
        image.load()
        target = save_named(runtime, image, folder, text)
    params = infotext_format.parse_infotext(text) if text else {}
    image_files.append_log(
        folder / "log.csv",
        {
            "prompt": params.get("Prompt"),
            "seed": params.get("Seed"),
            "width": image.width,
            "height": image.height,
            "sampler": params.get("Sampler"),
            "cfgs": params.get("CFG scale"),
            "steps": params.get("Steps"),
            "filename": target.name,
            "negative_prompt": params.get("Negative prompt"),
            "sd_model_name": params.get("Model"),
            "sd_model_hash": params.get("Model hash"),
        },
    )
    return target


def make_zip_file(folder: Path, files: list[Path]) -> Path:
    """images.zip, or images-1.zip... when taken: an earlier zip is never replaced."""
    for i in range(1_000_000):
        target = folder / ("images.zip" if i == 0 else f"images-{i}.zip")
        try:
            handle = open(target, "xb")  # exclusive: fails if the name exists
        except FileExistsError:
            continue
        with handle, zipfile.ZipFile(handle, "w") as archive:
            for file in files:
                archive.write(file, arcname=file.name)
        return target
    raise FileExistsError(f"no free zip name in {folder}")
