"""Grid images made by scripts: labels around them, their parameters text, and saving them.

Labels are the axis titles of X/Y/Z plots and the on/off captions of prompt matrices. Layout follows AUTOMATIC1111's ``draw_grid_annotations`` (font size (w+h)/25, words wrapped to the
cell width, a left band 3/4 of a cell wide when rows are labelled, optional margins between cells), so
grids look as users know them. Text uses Pillow's bundled font: nothing is downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, ImageFont

from modules import images as image_files
from modules import output_paths
from modules.infotext import quote

if TYPE_CHECKING:
    from modules.processing.pipeline import JobPlan

ACTIVE = (0, 0, 0)
INACTIVE = (153, 153, 153)  # a prompt-matrix part that is off: grey and struck through, as in A1111


@dataclass
class GridAnnotation:
    text: str = ""
    is_active: bool = True
    size: tuple[int, int] = field(default=(0, 0), compare=False)
    allowed_width: int = field(default=0, compare=False)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(1, size))


def _wrap(draw: ImageDraw.ImageDraw, text: str, fnt: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines = [""]
    for word in text.split():
        line = f"{lines[-1]} {word}".strip()
        if draw.textlength(line, font=fnt) <= width:
            lines[-1] = line
        else:
            lines.append(word)
    return lines


def _layout(texts: list[list[GridAnnotation]], width: int, fnt: ImageFont.FreeTypeFont) -> None:
    """Wrap each label to ``width`` and measure its lines, in place."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for labels in texts:
        wrapped = [
            GridAnnotation(line, a.is_active) for a in labels for line in _wrap(measure, a.text, fnt, width)
        ]
        labels[:] = wrapped
        for line in labels:
            box = measure.multiline_textbbox((0, 0), line.text, font=fnt)
            line.size = (int(box[2] - box[0]), int(box[3] - box[1]))
            line.allowed_width = width


def _draw_lines(
    draw: ImageDraw.ImageDraw, x: float, y: float, lines: list[GridAnnotation], fontsize: int, spacing: int
) -> None:
    for line in lines:
        size = fontsize
        fnt = font(size)
        while draw.multiline_textbbox((0, 0), line.text, font=fnt)[2] > line.allowed_width and size > 1:
            size -= 1  # a single word wider than the cell shrinks until it fits, as in A1111
            fnt = font(size)
        colour = ACTIVE if line.is_active else INACTIVE
        draw.multiline_text(
            (x, y + line.size[1] / 2), line.text, font=fnt, fill=colour, anchor="mm", align="center"
        )
        if not line.is_active:
            half_w, mid = line.size[0] // 2, y + line.size[1] // 2
            draw.line((x - half_w, mid, x + half_w, mid), fill=INACTIVE, width=4)
        y += line.size[1] + spacing


def draw_grid_annotations(
    grid: Image.Image,
    width: int,
    height: int,
    hor_texts: list[list[GridAnnotation]],
    ver_texts: list[list[GridAnnotation]],
    margin: int = 0,
) -> Image.Image:
    """A copy of ``grid`` (cells of width x height) with column labels above and row labels to the left."""
    fontsize = (width + height) // 25
    spacing = fontsize // 2
    fnt = font(fontsize)
    cols, rows = grid.width // width, grid.height // height
    if cols != len(hor_texts) or rows != len(ver_texts):
        raise ValueError(f"labels for {len(hor_texts)}x{len(ver_texts)} cells on a {cols}x{rows} grid")
    has_row_labels = any(a.text for labels in ver_texts for a in labels)
    pad_left = width * 3 // 4 if has_row_labels else 0
    hor_texts = [list(labels) for labels in hor_texts]
    ver_texts = [list(labels) for labels in ver_texts]
    _layout(hor_texts, width, fnt)
    _layout(ver_texts, pad_left, fnt)
    hor_heights = [sum(a.size[1] + spacing for a in labels) - spacing for labels in hor_texts]
    # A1111 subtracts the spacing once per line here (not once per label): kept so rows centre alike.
    ver_heights = [sum(a.size[1] + spacing for a in labels) - spacing * len(labels) for labels in ver_texts]
    pad_top = max(hor_heights) + spacing * 2 if sum(hor_heights) > 0 else 0
    result = Image.new(
        "RGB",
        (grid.width + pad_left + margin * (cols - 1), grid.height + pad_top + margin * (rows - 1)),
        "white",
    )
    for row in range(rows):
        for col in range(cols):
            cell = grid.crop((width * col, height * row, width * (col + 1), height * (row + 1)))
            result.paste(cell, (pad_left + (width + margin) * col, pad_top + (height + margin) * row))
    draw = ImageDraw.Draw(result)
    for col in range(cols):
        x = pad_left + (width + margin) * col + width / 2
        _draw_lines(draw, x, pad_top / 2 - hor_heights[col] / 2, hor_texts[col], fontsize, spacing)
    for row in range(rows):
        y = pad_top + (height + margin) * row + height / 2 - ver_heights[row] / 2
        _draw_lines(draw, pad_left / 2, y, ver_texts[row], fontsize, spacing)
    return result


def draw_prompt_matrix(
    grid: Image.Image, width: int, height: int, parts: list[str], margin: int = 0
) -> Image.Image:
    """Prompt-matrix labels: the first half of the optional parts across, the rest down, each on or off."""
    optional = parts[1:]
    boundary = math.ceil(len(optional) / 2)
    across, down = optional[:boundary], optional[boundary:]

    def labels(texts: list[str]) -> list[list[GridAnnotation]]:
        return [
            [GridAnnotation(t, is_active=bool(pos & (1 << i))) for i, t in enumerate(texts)]
            for pos in range(1 << len(texts))
        ]

    return draw_grid_annotations(grid, width, height, labels(across), labels(down), margin)


def add_params(infotext: str, params: Mapping[str, Any]) -> str:
    """``infotext`` with more ``Key: value`` pairs, placed before "Version" as A1111 orders a grid's pairs."""
    pairs = ", ".join(f"{key}: {quote(value)}" for key, value in params.items() if value is not None)
    if not pairs:
        return infotext
    head, sep, last = infotext.rpartition("\n")
    marker = ", Version: "
    if marker in last:
        before, _, after = last.partition(marker)
        last = f"{before}, {pairs}{marker}{after}"
    else:
        last = f"{last}, {pairs}" if last else pairs
    return f"{head}{sep}{last}"


def save_grid(
    p: JobPlan, grid: Image.Image, basename: str, infotext: str, prompt: str, seed: int
) -> Path | None:
    """Save a script's grid to outputs/<mode>-grids as "<basename>-NNNN.png" when grid saving is on."""
    if p.job.do_not_save_grid or not p.settings["grid_save"]:
        return None
    folder = p.paths.outputs_dir / f"{p.mode}-grids"
    # A1111's short grid names: "<basename>-0000.png", no pattern.
    return _save(p, grid, folder, infotext, prompt, seed, basename=basename, pattern="")


def save_sample(p: JobPlan, image: Image.Image, infotext: str, prompt: str, seed: int) -> Path | None:
    """Save an image a script assembled (e.g. an outpainted canvas) like a generated one."""
    settings = p.settings
    if p.job.do_not_save_samples or not settings["samples_save"]:
        return None
    folder = output_paths.output_folder(
        p.paths.outputs_dir, settings[f"outdir_{p.mode}_samples"], f"{p.mode}-images"
    )
    pattern = image_files.samples_pattern(settings)
    return _save(
        p,
        image,
        folder,
        infotext,
        prompt,
        seed,
        pattern=pattern,
        add_number=bool(settings["save_images_add_number"]),
    )


def _save(
    p: JobPlan, image: Image.Image, folder: Path | str, infotext: str, prompt: str, seed: int, **naming: Any
) -> Path:
    settings, job = p.settings, p.job
    fields = image_files.NameFields(
        seed=seed,
        prompt=prompt,
        negative_prompt=job.negative_prompt,
        styles=tuple(job.styles),
        model_name=p.model.name or "",
        model_hash=p.model.short_hash or "",
        steps=job.steps,
        cfg_scale=job.cfg_scale,
        width=image.width,
        height=image.height,
        sampler=job.sampler_name,
    )
    return image_files.save_image(
        image,
        folder,
        extension=settings["samples_format"],
        infotext=infotext if settings["enable_pnginfo"] else None,
        fields=fields,
        subfolder_pattern=settings["directories_filename_pattern"] if settings["save_to_dirs"] else None,
        **naming,
    )
