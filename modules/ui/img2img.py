"""The img2img tab and its sub-tabs (img2img, Sketch, Inpaint, Inpaint sketch, Inpaint upload, Batch).

Each sub-tab only decides where the init image and the mask come from; the job (same fields as
txt2img plus denoising strength, resize mode and the inpainting options) goes to ``runtime.img2img``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from modules.processing import batch
from modules.processing.img2img import DEFAULT_STRENGTH
from modules.processing.job import GenerationJob, GenerationResult
from modules.ui import extra_networks, generation, results
from modules.ui.form import JobForm
from modules.ui.generation import Toprow, UiContext
from modules.ui.scripts import ScriptControls

# (tab label, Tab id / elem_id suffix as in A1111)
MODES = (
    ("img2img", "img2img_img2img_tab"),
    ("Sketch", "img2img_img2img_sketch_tab"),
    ("Inpaint", "img2img_inpaint_tab"),
    ("Inpaint sketch", "img2img_inpaint_sketch_tab"),
    ("Inpaint upload", "img2img_inpaint_upload_tab"),
    ("Batch", "img2img_batch_tab"),
)
IMG2IMG, SKETCH, INPAINT, INPAINT_SKETCH, INPAINT_UPLOAD, BATCH = range(len(MODES))
# The inpaint sub-tabs: their jobs need a mask, and only they show the "Inpaint options", as in A1111
# (a Batch with a mask folder uses them too, set beforehand on an inpaint sub-tab: A1111 hides them
# there, and so do we).
INPAINT_MODES = (INPAINT, INPAINT_SKETCH, INPAINT_UPLOAD)

# The brush is sized to the picture, not the screen: Gradio's default is a 25-px radius whatever the
# image, which on the bundled model's 64-px pictures paints most of the image in a few strokes.
BRUSH_DIAMETER_FRACTION = 1 / 12  # of the image's shorter side; A1111 users expect a small brush
BLANK_CANVAS = (800, 800)  # what the editors draw on before an image is given (Gradio's default)
# The mask is painted translucent so the picture stays visible under it; only alpha > 0 counts
# (``layers_mask``), so the colour and opacity change nothing in the job. White: A1111's mask colour;
# black for light pictures.
MASK_COLOURS = [("#ffffff", 0.5), ("#000000", 0.5)]


@dataclass
class Img2ImgTab:
    toprow: Toprow
    form: JobForm
    results: results.Results
    tabs: gr.Tabs
    init_image: gr.Image
    inpaint: gr.ImageEditor
    mode: gr.State


@dataclass
class Sources:
    """The image inputs of the sub-tabs, in the handler's order after the form fields."""

    mode: gr.State
    init_image: gr.Image
    sketch: gr.ImageEditor
    inpaint: gr.ImageEditor
    inpaint_sketch: gr.ImageEditor
    mask_alpha: gr.Slider
    upload_base: gr.Image
    upload_mask: gr.Image
    batch_input: gr.Textbox
    batch_output: gr.Textbox
    batch_masks: gr.Textbox

    def inputs(self) -> list[gr.components.Component]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


def brush_radius(size: tuple[int, int] | None) -> int:
    """The brush radius in image pixels (what Gradio's brush size is) for an image of ``size``."""
    side = min(size or BLANK_CANVAS)
    return max(1, round(side * BRUSH_DIAMETER_FRACTION / 2))


def brushes(size: tuple[int, int] | None, mask: bool) -> dict[str, Any]:
    """The editor's brush and eraser for an image of ``size``: a mask brush or a colour sketch one."""
    radius = brush_radius(size)
    colours = {"colors": MASK_COLOURS, "color_mode": "fixed"} if mask else {}
    return {"brush": gr.Brush(default_size=radius, **colours), "eraser": gr.Eraser(default_size=radius)}


def editor(label: str, elem_id: str, mask: bool = False) -> gr.ImageEditor:
    return gr.ImageEditor(
        label=label,
        type="pil",
        elem_id=elem_id,
        format="png",
        height=420,
        canvas_size=BLANK_CANVAS,
        **brushes(None, mask),
    )


def inpaint_update(image: Image.Image | None) -> dict[str, Any]:
    """The Inpaint editor showing ``image`` with no mask yet ("send to inpaint"), its brush sized to it."""
    value = None if image is None else {"background": image, "layers": [], "composite": image}
    return gr.update(value=value, **brushes(image.size if image else None, mask=True))


def size_brush_on_upload(component: gr.ImageEditor, mask: bool) -> None:
    """Resize the editor's brush to each uploaded picture (Gradio's brush size is in image pixels)."""

    def resize(value: dict[str, Any] | None) -> dict[str, Any]:
        background = (value or {}).get("background")
        return gr.update(**brushes(background.size if background else None, mask))

    component.upload(resize, component, component, show_progress="hidden", api_visibility="private")


def build_sources(tabs_id: str) -> tuple[gr.Tabs, Sources]:
    mode = gr.State(IMG2IMG)
    with gr.Tabs(overflow_behavior="wrap", elem_id=tabs_id) as tabs:
        with gr.Tab(MODES[IMG2IMG][0], id=MODES[IMG2IMG][1], elem_id=MODES[IMG2IMG][1]) as t0:
            init_image = gr.Image(
                label="Image for img2img",
                type="pil",
                image_mode="RGBA",
                elem_id="img2img_image",
                format="png",
                height=420,
            )
        with gr.Tab(MODES[SKETCH][0], id=MODES[SKETCH][1], elem_id=MODES[SKETCH][1]) as t1:
            sketch = editor("Image for img2img", "img2img_sketch")
        with gr.Tab(MODES[INPAINT][0], id=MODES[INPAINT][1], elem_id=MODES[INPAINT][1]) as t2:
            inpaint = editor("Image for inpainting with mask", "img2maskimg", mask=True)
        with gr.Tab(
            MODES[INPAINT_SKETCH][0], id=MODES[INPAINT_SKETCH][1], elem_id=MODES[INPAINT_SKETCH][1]
        ) as t3:
            inpaint_sketch = editor("Color sketch inpainting", "inpaint_sketch")
            # A1111's "Mask transparency": how much of the original shows through the sketched area.
            mask_alpha = gr.Slider(
                label="Mask transparency",
                minimum=0,
                maximum=100,
                step=1,
                value=0,
                elem_id="img2img_mask_alpha",
            )
        with gr.Tab(
            MODES[INPAINT_UPLOAD][0], id=MODES[INPAINT_UPLOAD][1], elem_id=MODES[INPAINT_UPLOAD][1]
        ) as t4:
            upload_base = gr.Image(
                label="Image for img2img", type="pil", elem_id="img_inpaint_base", format="png"
            )
            # RGBA, as A1111: a mask with transparency is read from its alpha channel (imageops.binary_mask)
            upload_mask = gr.Image(
                label="Mask", type="pil", image_mode="RGBA", elem_id="img_inpaint_mask", format="png"
            )
        with gr.Tab(MODES[BATCH][0], id=MODES[BATCH][1], elem_id=MODES[BATCH][1]) as t5:
            gr.Markdown("Process images in a folder on the same machine where the server is running.")
            batch_input = gr.Textbox(label="Input directory", elem_id="img2img_batch_input_dir")
            batch_output = gr.Textbox(label="Output directory", elem_id="img2img_batch_output_dir")
            batch_masks = gr.Textbox(
                label="Inpaint batch mask directory (required for inpaint batch processing only)",
                elem_id="img2img_batch_inpaint_mask_dir",
            )
    for index, tab in enumerate((t0, t1, t2, t3, t4, t5)):
        tab.select(lambda i=index: i, None, mode, show_progress="hidden", api_visibility="private")
    for component, mask in ((sketch, False), (inpaint, True), (inpaint_sketch, False)):
        size_brush_on_upload(component, mask)
    sources = Sources(
        mode,
        init_image,
        sketch,
        inpaint,
        inpaint_sketch,
        mask_alpha,
        upload_base,
        upload_mask,
        batch_input,
        batch_output,
        batch_masks,
    )
    return tabs, sources


def inpaint_controls(tab: str, form: JobForm, mode: gr.State) -> None:
    """The "Inpaint options", shown only on the sub-tabs that use them (hidden on the default one).

    They follow ``mode``, so they are right whether the user picked the sub-tab or a "send to" did."""
    with gr.Accordion(
        "Inpaint options", open=True, elem_id=f"{tab}_inpaint_controls", visible=False
    ) as accordion:
        with gr.Row():
            form.control("mask_blur", tab)
            form.control("inpainting_mask_invert", tab)
        form.control("inpainting_fill", tab)
        with gr.Row():
            form.control("inpaint_full_res", tab)
            form.control("inpaint_full_res_padding", tab)
    mode.change(
        lambda m: gr.update(visible=int(m) in INPAINT_MODES),
        mode,
        accordion,
        show_progress="hidden",
        api_visibility="private",
    )


# --- turning sub-tab values into init image + mask ------------------------------------------------


def rgb(image: Image.Image | None) -> Image.Image | None:
    return None if image is None else image.convert("RGB")


def layers_mask(value: dict[str, Any]) -> Image.Image | None:
    """White where the user painted on any layer of an ImageEditor value."""
    background = value.get("background")
    layers = [layer for layer in value.get("layers") or [] if layer is not None]
    if background is None or not layers:
        return None
    painted = np.zeros((background.height, background.width), dtype=bool)
    for layer in layers:
        alpha = np.asarray(layer.convert("RGBA").resize(background.size))[..., 3]
        painted |= alpha > 0
    return Image.fromarray(painted.astype(np.uint8) * 255, "L")


def sketch_mask(value: dict[str, Any]) -> Image.Image | None:
    """White where the coloured sketch changed the picture (A1111's inpaint sketch mask)."""
    background, composite = value.get("background"), value.get("composite")
    if background is None or composite is None:
        return None
    changed = np.any(
        np.asarray(composite.convert("RGB")) != np.asarray(background.convert("RGB").resize(composite.size)),
        axis=-1,
    )
    return Image.fromarray(changed.astype(np.uint8) * 255, "L")


def sketch_inputs(
    value: dict[str, Any], mask_blur: int, mask_alpha: float
) -> tuple[Image.Image | None, Image.Image | None]:
    """Inpaint sketch's init image and mask, by A1111's rule: the mask is where the sketch changed the
    picture, dimmed by the "Mask transparency" percentage (a partial mask keeps that much of the
    original), and the init image is the sketch blurred by the mask blur, laid over the original through
    the equally blurred mask, so the sketched colours blend in at their edges."""
    mask = sketch_mask(value)
    if mask is None:
        return rgb(value.get("composite")), None
    mask = ImageEnhance.Brightness(mask).enhance(1 - float(mask_alpha) / 100)
    sketch = value["composite"].convert("RGB")
    original = value["background"].convert("RGB").resize(sketch.size)
    blur = ImageFilter.GaussianBlur(mask_blur)
    return Image.composite(sketch.filter(blur), original, mask.filter(blur)), mask


def init_and_mask(
    mode: int, values: dict[str, Any], mask_blur: int = 0
) -> tuple[Image.Image | None, Image.Image | None]:
    """The active sub-tab's init image and mask; ``mask_blur`` (the job's) softens Inpaint sketch's init
    image as A1111 does (interrogation, which needs only the picture, passes none)."""
    if mode == IMG2IMG:
        return rgb(values["init_image"]), None
    if mode == SKETCH:
        return rgb((values["sketch"] or {}).get("composite")), None
    if mode == INPAINT:
        value = values["inpaint"] or {}
        return rgb(value.get("background")), layers_mask(value)
    if mode == INPAINT_SKETCH:
        return sketch_inputs(values["inpaint_sketch"] or {}, mask_blur, values.get("mask_alpha") or 0)
    if mode == INPAINT_UPLOAD:
        mask = values["upload_mask"]
        return rgb(values["upload_base"]), mask
    return None, None


# --- running ---------------------------------------------------------------------------------------


def run_batch(ctx: UiContext, job: GenerationJob, folders: dict[str, str]) -> GenerationResult:
    """The Batch sub-tab: every image of the input folder through img2img (``modules.processing.batch``)."""
    options = batch.BatchOptions(folders["input"], folders["output"] or None, folders["masks"] or None)
    done = batch.run_batch(ctx.runtime, job, options)
    if not done.result.images and not done.result.interrupted:
        skipped = f" (skipped: {'; '.join(done.skipped)})" if done.skipped else ""
        raise ValueError(f"no images made from {folders['input']}{skipped}")
    return done.result


def preparer(
    ctx: UiContext, form: JobForm, sources: Sources, script_ui: ScriptControls
) -> Callable[[list[Any]], tuple[GenerationJob, generation.Runner]]:
    """The generate handler's ``prepare``: form values -> job; the active sub-tab -> images and runner;
    the script controls -> the job's script fields."""
    names = list(sources.__dataclass_fields__)
    count = len(form.fields)
    end = count + len(names)

    def prepare(values: list[Any]) -> tuple[GenerationJob, generation.Runner]:
        job = form.to_job(values[:count])
        script_ui.apply(job, values[end:])
        src = dict(zip(names, values[count:end], strict=True))
        mode = int(src["mode"])
        if mode == BATCH:
            folders = {
                "input": src["batch_input"],
                "output": src["batch_output"],
                "masks": src["batch_masks"],
            }
            return job, lambda j: run_batch(ctx, j, folders)
        init, mask = init_and_mask(mode, src, job.mask_blur)
        if init is None:
            raise ValueError(f"init_images: no image given in the {MODES[mode][0]} tab")
        if mode in INPAINT_MODES and mask is None:
            raise ValueError("mask: paint the area to change (or upload a mask) first")
        job.init_images, job.mask = [init], mask
        return job, ctx.runtime.img2img

    return prepare


def interrogate_handler(ctx: UiContext, sources: Sources) -> Callable[..., Any]:
    """ "Interrogate CLIP": the active sub-tab's image as a prompt, into the prompt box; in the Batch
    sub-tab, a .txt caption for every image of the input folder (beside them, or in the output folder)."""
    from modules.interrogate import MissingModel

    names = list(sources.__dataclass_fields__)

    def run(*values: Any) -> Any:
        src = dict(zip(names, values, strict=True))
        mode = int(src["mode"])
        try:
            if mode == BATCH:
                report = ctx.runtime.interrogate_folder(src["batch_input"], src["batch_output"] or None)
                skipped = (
                    f"; skipped {len(report.skipped)}: {'; '.join(report.skipped)}" if report.skipped else ""
                )
                gr.Info(f"Interrogate: wrote {len(report.written)} captions{skipped}")
                return gr.update()
            image, _ = init_and_mask(mode, src)
            if image is None:
                raise gr.Error(f"Interrogate: no image in the {MODES[mode][0]} tab")
            return ctx.runtime.interrogate(image)
        except (MissingModel, ValueError) as error:
            raise gr.Error(f"Interrogate: {error}") from error

    return run


def build(ctx: UiContext) -> Img2ImgTab:
    tab = "img2img"
    toprow, networks, form = generation.start_tab(ctx, tab)
    with gr.Row():
        with gr.Column(scale=1, elem_id=f"{tab}_settings"):
            tabs, sources = build_sources("mode_img2img")
            interrogate = gr.Button("Interrogate CLIP", elem_id="interrogate")
            form.control("resize_mode", tab)
            generation.sampler_controls(ctx.runtime, tab, form)
            generation.size_controls(tab, form)
            generation.cfg_control(tab, form)
            form.control("denoising_strength", tab, value=DEFAULT_STRENGTH)
            reuse = generation.seed_controls(tab, form)
            form.add("styles", toprow.styles)
            inpaint_controls(tab, form, sources.mode)
            script_ui = generation.script_controls(ctx, tab, form)
        with gr.Column(scale=1, elem_id=f"{tab}_results"):
            res = results.build(ctx.runtime, tab)
    generation.wire_generate(
        ctx,
        tab,
        toprow,
        res,
        form.inputs() + sources.inputs() + script_ui.inputs(),
        preparer(ctx, form, sources, script_ui),
        optional=len(script_ui.inputs()),
    )
    extra_networks.wire(ctx.runtime, networks, toprow.extra_networks, toprow.prompt)
    generation.wire_seed_reuse(res, form, reuse)
    generation.wire_token_counters(ctx, toprow, form.fields["steps"])
    generation.wire_paste(ctx, toprow, form)
    interrogate.click(interrogate_handler(ctx, sources), sources.inputs(), toprow.prompt)
    return Img2ImgTab(toprow, form, res, tabs, sources.init_image, sources.inpaint, sources.mode)
