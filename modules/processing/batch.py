"""Batch img2img: every image of an input folder (with an optional mask folder) through img2img, saved to
an output folder under the input's own name, with its parameters text inside each file.

Used by the UI's Batch tab and by tests. Each image is one ``runtime.img2img`` call (one queue turn,
so a UI or API request can slip in between images). Behaviour follows AUTOMATIC1111's batch mode:
one seed for the whole folder, EXIF-rotated photos upright, masks matched by file name (or one mask
for all), and optionally prompt/seed/... taken from each image's own parameters text ("PNG info").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from modules.images import read_info_from_image
from modules.infotext import parse_infotext
from modules.processing import seeds as seeding
from modules.processing.job import GenerationJob, GenerationResult

if TYPE_CHECKING:
    from modules.runtime import Runtime

log = logging.getLogger("batch")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")  # A1111's batch file types
PNG_INFO_PROPS = ("Prompt", "Negative prompt", "Seed", "CFG scale", "Sampler", "Steps", "Model hash")


@dataclass
class BatchOptions:
    input_dir: str | Path
    output_dir: str | Path | None = None  # None or "": the usual img2img output folder
    mask_dir: str | Path | None = None  # masks named like the images (or a single mask for all)
    scale_by: float | None = None  # "Resize by": each image's size times this, instead of width/height
    use_png_info: bool = False  # take PNG_INFO_PROPS items from each image's parameters text
    png_info_props: tuple[str, ...] = PNG_INFO_PROPS
    png_info_dir: str | Path | None = None  # read that text from same-named files here instead


@dataclass
class BatchResult:
    result: GenerationResult
    processed: list[Path] = field(default_factory=list)  # input files that produced images
    skipped: list[str] = field(default_factory=list)  # "name: why"


def image_files(folder: str | Path) -> list[Path]:
    """Images under the folder (subfolders too, as A1111), in a stable order."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"input_dir: {root} is not a folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_mask(masks: list[Path], image: Path) -> Path | None:
    if len(masks) == 1:
        return masks[0]  # A1111: a single mask is used for every image
    return next((m for m in masks if m.stem == image.stem), None)


def output_settings(options: BatchOptions, job: GenerationJob, stem: str) -> dict[str, Any]:
    """Settings that save an image to the output folder under its input's name."""
    if not options.output_dir:
        return {}
    several = job.n_iter > 1 or job.batch_size > 1
    return {
        "save_to_dirs": False,
        "samples_save": True,  # a batch with an output folder is run to fill it
        "samples_filename_pattern": f"{stem}-[generation_number]" if several else stem,
        # A1111 1.6+ prefixes a sequence number here; we keep the input's name exactly, as older versions
        # did and as users of batch mode expect (an existing file is never overwritten: "-1" is added).
        "save_images_add_number": False,
    }


def png_info_changes(
    runtime: Runtime, options: BatchOptions, base: GenerationJob, image_path: Path, image: Image.Image
) -> dict[str, Any]:
    """Job fields from the image's own parameters text, limited to the chosen items (A1111's PNG info)."""
    source = image
    if options.png_info_dir:
        try:
            source = Image.open(Path(options.png_info_dir) / image_path.name)
        except (OSError, UnidentifiedImageError):
            return {}
    text, _ = read_info_from_image(source)
    if not text:
        return {}
    params = {k: v for k, v in parse_infotext(text).items() if k in options.png_info_props}
    changes: dict[str, Any] = {
        "prompt": " ".join(t for t in (base.prompt, str(params.get("Prompt", ""))) if t),
        "negative_prompt": " ".join(
            t for t in (base.negative_prompt, str(params.get("Negative prompt", ""))) if t
        ),
    }
    for key, name, kind in (
        ("Seed", "seed", int),
        ("CFG scale", "cfg_scale", float),
        ("Sampler", "sampler_name", str),
        ("Steps", "steps", int),
    ):
        if key in params:
            changes[name] = kind(params[key])
    if "Model hash" in params:
        try:
            title = runtime.models.find(str(params["Model hash"])).title
            changes["override_settings"] = {"sd_model_checkpoint": title}
        except KeyError:
            pass  # A1111 keeps the selected checkpoint when the hash is unknown
    return changes


def image_job(
    runtime: Runtime,
    options: BatchOptions,
    base: GenerationJob,
    path: Path,
    image: Image.Image,
    mask: Image.Image | None,
) -> GenerationJob:
    changes: dict[str, Any] = {}
    if options.use_png_info:
        changes = png_info_changes(runtime, options, base, path, image)
    if options.scale_by:
        # Rounded down to the VAE's multiple of 8, which is what the image would come out at anyway.
        changes["width"] = max(8, int(image.width * options.scale_by) // 8 * 8)
        changes["height"] = max(8, int(image.height * options.scale_by) // 8 * 8)
    overrides = {
        **base.override_settings,
        **changes.pop("override_settings", {}),
        **output_settings(options, base, path.stem),
    }
    if options.output_dir:
        changes["outpath_samples"] = str(options.output_dir)
    return base.derive(
        script_name=base.script_name,  # each image runs the selected script, as in A1111's batch tab
        script_args=list(base.script_args),
        init_images=[image] * base.batch_size,
        mask=mask if mask is not None else base.mask,
        override_settings=overrides,
        do_not_save_samples=False,
        **changes,
    )


def run_batch(
    runtime: Runtime,
    job: GenerationJob,
    options: BatchOptions,
    on_image: Callable[[Path, GenerationResult], None] | None = None,
) -> BatchResult:
    """Run ``job`` on every image of ``options.input_dir``; stops early when interrupted."""
    files = image_files(options.input_dir)
    masks = image_files(options.mask_dir) if options.mask_dir else []
    # One seed for the whole folder, drawn once if random, as A1111's batch mode does.
    base = dataclasses.replace(job, seed=seeding.resolve_seed(job.seed))
    batch = BatchResult(
        GenerationResult(
            images=[], seeds=[], subseeds=[], prompts=[], negative_prompts=[], infotexts=[], parameters={}
        )
    )
    # One bar for the whole folder: each image's generation goes on where the last one stopped.
    with runtime.progress.span("img2img", len(files) * job.n_iter, job.batch_size):
        run_files(runtime, options, base, files, masks, batch, on_image)
    return batch


def run_files(
    runtime: Runtime,
    options: BatchOptions,
    base: GenerationJob,
    files: list[Path],
    masks: list[Path],
    batch: BatchResult,
    on_image: Callable[[Path, GenerationResult], None] | None,
) -> None:
    for path in files:
        image = load(path, batch.skipped)
        if image is None:
            continue
        mask = None
        if masks:
            mask_path = find_mask(masks, path)
            if mask_path is None:
                batch.skipped.append(f"{path.name}: no mask named {path.stem}.* in {options.mask_dir}")
                continue
            mask = load(mask_path, batch.skipped)
            if mask is None:
                continue
        done = runtime.img2img(image_job(runtime, options, base, path, image, mask))
        add(batch.result, done)
        batch.processed.append(path)
        if on_image is not None:
            on_image(path, done)
        if done.interrupted:
            batch.result.interrupted = True
            break


def load(path: Path, skipped: list[str]) -> Image.Image | None:
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)  # phone photos carry their rotation in EXIF
            image.load()
            image.info.update(opened.info)  # keep the parameters text for PNG info
            return image
    except (OSError, UnidentifiedImageError) as error:
        log.warning("skipping %s: %s", path, error)
        skipped.append(f"{path.name}: {error}")
        return None


def add(total: GenerationResult, done: GenerationResult) -> None:
    total.images += done.samples
    total.infotexts += done.infotexts[done.index_of_first_image :]
    for name in ("seeds", "subseeds", "prompts", "negative_prompts", "saved_paths"):
        getattr(total, name).extend(getattr(done, name))
    total.parameters = total.parameters or done.parameters
