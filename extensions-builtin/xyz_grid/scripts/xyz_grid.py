"""X/Y/Z plot: run the job once per combination of up to three axes of values and lay the images out as
labelled grids (one per Z value, and a grid of those).

Axis types, value syntax ("1-5", "1-5 (+2)", "10-20 [5]", CSV quoting), seed fixing, the order cells
are run in, the labels and the parameters text ("Script: X/Y/Z plot, X Type: Steps, X Values: ...")
follow AUTOMATIC1111's script, so plots and pasted parameters carry over.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modules.extensions import api
from modules.extensions.api import GenerationJob, GenerationResult, JobContext, Script, image_grid

log = logging.getLogger("xyz_grid")

TITLE = "X/Y/Z plot"
MAX_GRID_MEGAPIXELS = 200  # A1111's img_max_size_mp default: refuse plots that could not be saved
SEED_RANGE = 4294967294  # A1111 draws axis seeds with random.randrange(4294967294)

RE_RANGE = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\(([+-]\d+)\s*\))?\s*")
RE_RANGE_COUNT = re.compile(r"\s*([+-]?\s*\d+)\s*-\s*([+-]?\s*\d+)(?:\s*\[(\d+)\s*\])?\s*")
# The unescaped '.' is A1111's: "1x5-2" parses as a float range there too, so the same texts work.
RE_RANGE_FLOAT = re.compile(
    r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\(([+-]\d+(?:.\d*)?)\s*\))?\s*"
)
RE_RANGE_COUNT_FLOAT = re.compile(
    r"\s*([+-]?\s*\d+(?:.\d*)?)\s*-\s*([+-]?\s*\d+(?:.\d*)?)(?:\s*\[(\d+(?:.\d*)?)\s*\])?\s*"
)


def permutations(values: Any) -> Any:
    """The "Prompt order" value type: each value is one ordering of the listed prompt parts."""
    return values


# --- applying a value to a cell's job ---------------------------------------------------------------

Apply = Callable[[api.Lookup, GenerationJob, Any, list[Any]], None]  # (lookup, job, value, all values)


def set_field(name: str) -> Apply:
    def apply(lookup: api.Lookup, job: GenerationJob, value: Any, values: list[Any]) -> None:
        setattr(job, name, value)

    return apply


def set_setting(key: str) -> Apply:
    def apply(lookup: api.Lookup, job: GenerationJob, value: Any, values: list[Any]) -> None:
        job.override_settings[key] = value

    return apply


def do_nothing(lookup: api.Lookup, job: GenerationJob, value: Any, values: list[Any]) -> None:
    pass


def apply_prompt_sr(lookup: api.Lookup, job: GenerationJob, value: str, values: list[Any]) -> None:
    """Prompt S/R: the first value is searched for and replaced by each value (itself for the first)."""
    search = values[0]
    if search not in job.prompt and search not in job.negative_prompt:
        raise ValueError(f"Prompt S/R did not find {search} in prompt or negative prompt.")
    job.prompt = job.prompt.replace(search, value)
    job.negative_prompt = job.negative_prompt.replace(search, value)


def apply_order(lookup: api.Lookup, job: GenerationJob, value: Sequence[str], values: list[Any]) -> None:
    """Prompt order: put the listed parts back into the prompt in this order, where they first appeared."""
    found = sorted(((job.prompt.find(token), token) for token in value), key=lambda t: t[0])
    rest, pieces = job.prompt, []
    for _, token in found:
        at = rest.find(token)
        pieces.append(rest[:at])
        rest = rest[at + len(token) :]
    job.prompt = "".join(piece + token for piece, token in zip(pieces, value, strict=True)) + rest


def apply_sampler(name: str) -> Apply:
    def apply(lookup: api.Lookup, job: GenerationJob, value: str, values: list[Any]) -> None:
        setattr(job, name, lookup.sampler(value))  # aliases (k_euler) and case accepted

    return apply


def apply_schedule_type(lookup: api.Lookup, job: GenerationJob, value: str, values: list[Any]) -> None:
    job.scheduler = lookup.schedule_type(value)


def apply_checkpoint(lookup: api.Lookup, job: GenerationJob, value: str, values: list[Any]) -> None:
    # A per-cell setting: the cell's generation loads it through the model manager (queue lock is held).
    try:
        job.override_settings["sd_model_checkpoint"] = lookup.checkpoint(value)
    except ValueError as error:
        raise ValueError(f"X/Y/Z plot: unknown checkpoint {value!r}") from error


def apply_vae(lookup: api.Lookup, job: GenerationJob, value: str, values: list[Any]) -> None:
    name = value.strip()
    if name.lower() in ("auto", "automatic"):
        choice = "Automatic"
    elif name.lower() == "none":
        choice = "None"
    else:
        known = lookup.vae_names()
        # A1111 falls back to Automatic for an unknown VAE name, printing a warning.
        choice = next((k for k in known if k.lower() == name.lower()), None)
        if choice is None:
            log.warning("No VAE found for %s; using Automatic", name)
            choice = "Automatic"
    job.override_settings["sd_vae"] = choice


def apply_styles(lookup: api.Lookup, job: GenerationJob, value: str, values: list[Any]) -> None:
    # A1111 splits on ',' without stripping, so " b" never matched a style; we strip the names.
    job.styles.extend(s.strip() for s in value.split(",") if s.strip())


def apply_size(lookup: api.Lookup, job: GenerationJob, value: str, values: list[Any]) -> None:
    width, _, height = value.partition("x")
    try:
        job.width, job.height = int(width.strip()), int(height.strip())
    except ValueError as error:
        raise ValueError(f"X/Y/Z plot: invalid size {value!r} (use WIDTHxHEIGHT)") from error


# --- axis types ---------------------------------------------------------------------------------------


def label_and_value(option: AxisOption, value: Any) -> str:
    if isinstance(value, float):
        value = round(value, 8)
    return f"{option.label}: {value}"


def value_only(option: AxisOption, value: Any) -> str:
    return str(round(value, 8) if isinstance(value, float) else value)


def joined(option: AxisOption, value: Any) -> str:
    return ", ".join(value)


def nothing(option: AxisOption, value: Any) -> str:
    return ""


def without_path(option: AxisOption, value: Any) -> str:
    return str(value).replace("\\", "/").rsplit("/", 1)[-1]


BOTH = ("txt2img", "img2img")


@dataclass(frozen=True)
class AxisOption:
    label: str
    type: Callable[[Any], Any]  # int, float, str or permutations
    apply: Apply
    format_value: Callable[[AxisOption, Any], str] = label_and_value
    cost: float = 0.0  # how slow a change of value is: the costliest axis changes least often
    modes: tuple[str, ...] = BOTH


AXIS_OPTIONS = [
    AxisOption("Nothing", str, do_nothing, nothing),
    AxisOption("Seed", int, set_field("seed")),
    AxisOption("Var. seed", int, set_field("subseed")),
    AxisOption("Var. strength", float, set_field("subseed_strength")),
    AxisOption("Steps", int, set_field("steps")),
    AxisOption("Hires steps", int, set_field("hr_second_pass_steps"), modes=("txt2img",)),
    AxisOption("CFG Scale", float, set_field("cfg_scale")),
    AxisOption("Prompt S/R", str, apply_prompt_sr, value_only),
    AxisOption("Prompt order", permutations, apply_order, joined),
    AxisOption("Sampler", str, apply_sampler("sampler_name"), value_only),
    AxisOption("Hires sampler", str, apply_sampler("hr_sampler_name"), value_only, modes=("txt2img",)),
    AxisOption("Checkpoint name", str, apply_checkpoint, without_path, cost=1.0),
    AxisOption("Sigma Churn", float, set_field("s_churn")),
    AxisOption("Sigma min", float, set_field("s_tmin")),
    AxisOption("Sigma max", float, set_field("s_tmax")),
    AxisOption("Sigma noise", float, set_field("s_noise")),
    AxisOption("Schedule type", str, apply_schedule_type),
    AxisOption("Eta", float, set_field("eta")),
    AxisOption("Clip skip", int, set_field("clip_skip")),
    AxisOption("Denoising", float, set_field("denoising_strength")),
    AxisOption("Initial noise multiplier", float, set_field("initial_noise_multiplier")),
    AxisOption("Hires upscaler", str, set_field("hr_upscaler"), modes=("txt2img",)),
    AxisOption("Cond. Image Mask Weight", float, set_setting("inpainting_mask_weight"), modes=("img2img",)),
    AxisOption("VAE", str, apply_vae, cost=0.7),
    AxisOption("Styles", str, apply_styles),
    AxisOption("RNG source", str, set_setting("randn_source")),
    AxisOption("Size", str, apply_size),
]

# A1111 1.10's axis lists, for API callers that send the dropdown's index instead of the label.
A1111_LABELS = {
    "txt2img": [
        "Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "Hires steps", "CFG Scale", "Prompt S/R",
        "Prompt order", "Sampler", "Hires sampler", "Checkpoint name", "Negative Guidance minimum sigma",
        "Sigma Churn", "Sigma min", "Sigma max", "Sigma noise", "Schedule type", "Schedule min sigma",
        "Schedule max sigma", "Schedule rho", "Beta schedule alpha", "Beta schedule beta", "Eta", "Clip skip",
        "Denoising", "Initial noise multiplier", "Extra noise", "Hires upscaler", "VAE", "Styles",
        "UniPC Order", "Face restore", "Token merging ratio", "Token merging ratio high-res",
        "Always discard next-to-last sigma", "SGM noise multiplier", "Refiner checkpoint", "Refiner switch at",
        "RNG source", "FP8 mode", "Size",
    ],
    "img2img": [
        "Nothing", "Seed", "Var. seed", "Var. strength", "Steps", "CFG Scale", "Image CFG Scale", "Prompt S/R",
        "Prompt order", "Sampler", "Checkpoint name", "Negative Guidance minimum sigma", "Sigma Churn",
        "Sigma min", "Sigma max", "Sigma noise", "Schedule type", "Schedule min sigma", "Schedule max sigma",
        "Schedule rho", "Beta schedule alpha", "Beta schedule beta", "Eta", "Clip skip", "Denoising",
        "Initial noise multiplier", "Extra noise", "Cond. Image Mask Weight", "VAE", "Styles", "UniPC Order",
        "Face restore", "Token merging ratio", "Token merging ratio high-res",
        "Always discard next-to-last sigma", "SGM noise multiplier", "Refiner checkpoint", "Refiner switch at",
        "RNG source", "FP8 mode", "Size",
    ],
}  # fmt: skip


def axis_options(mode: str) -> list[AxisOption]:
    return [option for option in AXIS_OPTIONS if mode in option.modes]


def find_axis(mode: str, choice: int | str | None) -> AxisOption:
    """An axis type by label (the UI) or by A1111's dropdown index (API callers)."""
    if choice is None or choice == "":
        choice = "Nothing"
    label = choice
    if isinstance(choice, int) or str(choice).isdigit():
        labels = A1111_LABELS[mode]
        if not 0 <= int(choice) < len(labels):
            raise ValueError(f"X/Y/Z plot: axis type index {choice} is out of range")
        label = labels[int(choice)]
    for option in axis_options(mode):
        if option.label.lower() == str(label).lower():
            return option
    raise ValueError(f"X/Y/Z plot: axis type {label!r} is not supported in {mode}")


# --- values -------------------------------------------------------------------------------------------


def split_csv(text: str) -> list[str]:
    """Comma-separated values with CSV quoting ("a, b" stays one value), each stripped, as in A1111."""
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    return [value.strip() for value in itertools.chain.from_iterable(rows)]


def _number(text: str) -> str:
    return re.sub(r"\s+", "", text)


def expand_int(text: str) -> list[Any]:
    """ "1-5" -> 1..5, "1-10 (+3)" -> 1, 4, 7, 10, "0-100 [5]" -> 5 evenly spaced (truncated) values."""
    if m := RE_RANGE.fullmatch(text):
        start, end = int(_number(m.group(1))), int(_number(m.group(2))) + 1
        # As A1111: the end is made inclusive by +1 even for a negative step ("5-1 (-1)" gives 5, 4, 3).
        return list(range(start, end, int(m.group(3)) if m.group(3) else 1))
    if m := RE_RANGE_COUNT.fullmatch(text):
        start, end = int(_number(m.group(1))), int(_number(m.group(2)))
        count = int(m.group(3)) if m.group(3) else 1
        return [int(x) for x in np.linspace(start, end, count).tolist()]
    return [text]


def expand_float(text: str) -> list[Any]:
    """Float ranges: "0-1 (+0.25)" steps (numpy.arange up to end + step, as A1111), "0-1 [5]" counts."""
    if m := RE_RANGE_FLOAT.fullmatch(text):
        start, end = float(_number(m.group(1))), float(_number(m.group(2)))
        step = float(m.group(3)) if m.group(3) else 1.0
        return np.arange(start, end + step, step).tolist()
    if m := RE_RANGE_COUNT_FLOAT.fullmatch(text):
        start, end = float(_number(m.group(1))), float(_number(m.group(2)))
        count = int(float(m.group(3))) if m.group(3) else 1
        return np.linspace(start, end, count).tolist()
    return [text]


def parse_values(
    option: AxisOption, text: str, chosen: Sequence[str] | None = None, csv_mode: bool = True
) -> list[Any]:
    """The values of one axis. ``chosen`` (the dropdown's list) wins over the text when given, unless
    ``csv_mode`` ("Use text inputs instead of dropdowns")."""
    if option.label == "Nothing":
        return [0]
    values = list(chosen) if chosen and not csv_mode else split_csv(text or "")
    if option.type in (int, float):
        expand = expand_int if option.type is int else expand_float
        values = [v for value in values if str(value).strip() for v in expand(str(value))]
    elif option.type is permutations:
        values = list(itertools.permutations(values))
    try:
        return [option.type(v) for v in values]
    except ValueError as error:
        raise ValueError(f"X/Y/Z plot: {option.label} values: {error}") from error


def fix_seeds(option: AxisOption, values: list[Any]) -> list[Any]:
    """-1 (or empty) seeds on a Seed axis are drawn once, so every row/column shares them."""
    if option.label not in ("Seed", "Var. seed"):
        return values
    return [random.randrange(SEED_RANGE) if v in (None, "", -1) else v for v in values]


# --- the plot -----------------------------------------------------------------------------------------


@dataclass
class Axis:
    name: str  # "X", "Y" or "Z"
    option: AxisOption
    text: str  # what the user typed, for the parameters text
    values: list[Any]
    vary_seeds: bool = False

    @property
    def labels(self) -> list[str]:
        return [self.option.format_value(self.option, v) for v in self.values]

    def params(self, fixed_seeds: bool) -> dict[str, Any]:
        """ "X Type"/"X Values" (and "Fixed X Values" for drawn seeds) for the grid's parameters text."""
        if self.option.label == "Nothing":
            return {}
        params = {f"{self.name} Type": self.option.label, f"{self.name} Values": self.text}
        if self.option.label in ("Seed", "Var. seed") and fixed_seeds:
            params[f"Fixed {self.name} Values"] = ", ".join(str(v) for v in self.values)
        return params


@dataclass
class Cell:
    image: Any = None
    result: GenerationResult | None = None
    job: GenerationJob | None = None


@dataclass
class Plot:
    xs: Axis
    ys: Axis
    zs: Axis
    cells: dict[tuple[int, int, int], Cell] = field(default_factory=dict)

    def index_order(self) -> list[tuple[int, int, int]]:
        """Cell indices (ix, iy, iz) in run order: the costliest axis changes least often (A1111)."""
        axes = sorted([(2, self.zs), (1, self.ys), (0, self.xs)], key=lambda a: -a[1].option.cost)
        ranges = [range(len(axis.values)) for _, axis in axes]
        order = []
        for combo in itertools.product(*ranges):
            index = [0, 0, 0]
            for (position, _), value in zip(axes, combo, strict=True):
                index[position] = value
            order.append((index[0], index[1], index[2]))
        return order


def cell_job(base: GenerationJob) -> GenerationJob:
    """A copy of the job for one cell, without the script (the cell runs plain processing)."""
    return base.derive()


def make_cell_job(p: JobContext, plot: Plot, index: tuple[int, int, int], fixed_seeds: bool) -> GenerationJob:
    ix, iy, iz = index
    job = cell_job(p.job)
    if fixed_seeds:
        job.seed, job.subseed = p.seed, p.subseed
    for axis, i in ((plot.xs, ix), (plot.ys, iy), (plot.zs, iz)):
        axis.option.apply(p.lookup, job, axis.values[i], axis.values)
    xdim = len(plot.xs.values) if plot.xs.vary_seeds else 1
    ydim = len(plot.ys.values) if plot.ys.vary_seeds else 1
    offset = (ix if plot.xs.vary_seeds else 0) + (iy * xdim if plot.ys.vary_seeds else 0)
    offset += iz * xdim * ydim if plot.zs.vary_seeds else 0
    if offset and job.seed != -1:
        job.seed += offset
    return job


def check_plot(p: JobContext, plot: Plot, fixed_seeds: bool) -> None:
    """Fail before any sampling: every value must apply and give a valid job, and the grid must fit."""
    for index in itertools.product(*(range(len(a.values)) for a in (plot.xs, plot.ys, plot.zs))):
        make_cell_job(p, plot, index, fixed_seeds).validate()
    count = len(plot.xs.values) * len(plot.ys.values) * len(plot.zs.values)
    megapixels = count * p.job.width * p.job.height / 1_000_000
    if megapixels > MAX_GRID_MEGAPIXELS:
        raise ValueError(
            f"X/Y/Z plot: the grid would be {megapixels:.0f} MP; the limit is {MAX_GRID_MEGAPIXELS} MP"
        )


def run_cells(p: JobContext, plot: Plot, fixed_seeds: bool) -> None:
    order = plot.index_order()
    jobs = [make_cell_job(p, plot, index, fixed_seeds) for index in order]
    # A failing cell stops the plot with its error; A1111 logs it and leaves the cell blank, which
    # hides a broken setting behind a grid of blanks (values are checked before any cell runs).
    results = p.run_jobs(jobs, job_count=len(order) * p.job.n_iter)  # the whole plot is one progress bar
    for index, job, result in zip(order, jobs, results + [None] * (len(order) - len(results)), strict=True):
        if result is None:
            plot.cells[index] = Cell()  # not made: interrupted
        else:
            # A cell with several images shows the first, the batch's grid when there is one (as A1111).
            plot.cells[index] = Cell(result.images[0] if result.images else None, result, job)


def blank_like(plot: Plot, p: JobContext) -> Any:
    from PIL import Image

    sample = next((c.image for c in plot.cells.values() if c.image is not None), None)
    if sample is None:
        return Image.new("RGB", (p.job.width, p.job.height))
    return Image.new(sample.mode, sample.size)


def draw_grids(p: JobContext, plot: Plot, draw_legend: bool, margin: int) -> list[Any]:
    """One grid per Z value (X across, Y down), then the grid of those with the Z labels: [main, subs...]."""
    blank = blank_like(plot, p)
    xs, ys, zs = plot.xs, plot.ys, plot.zs
    sub_grids = []
    for iz in range(len(zs.values)):
        images = same_size(
            [
                plot.cells[(ix, iy, iz)].image or blank
                for iy in range(len(ys.values))
                for ix in range(len(xs.values))
            ]
        )
        grid = image_grid(images, rows=len(ys.values))
        if draw_legend:
            width, height = images[0].size
            grid = api.draw_grid_annotations(
                grid,
                width,
                height,
                [[api.GridAnnotation(t)] for t in xs.labels],
                [[api.GridAnnotation(t)] for t in ys.labels],
                margin,
            )
        sub_grids.append(grid)
    sub_grids = same_size(sub_grids)
    main = image_grid(sub_grids, rows=1)
    if draw_legend:
        width, height = sub_grids[0].size
        main = api.draw_grid_annotations(
            main, width, height, [[api.GridAnnotation(t)] for t in zs.labels], [[api.GridAnnotation()]]
        )
    return [main, *sub_grids]


def same_size(images: list[Any]) -> list[Any]:
    """Cells of different sizes (a Size axis) are placed top-left on black cells of the largest size."""
    from PIL import Image

    width, height = (max(sizes) for sizes in zip(*(im.size for im in images), strict=True))
    if all(im.size == (width, height) for im in images):
        return images
    framed = []
    for im in images:
        cell = Image.new("RGB", (width, height))
        cell.paste(im, (0, 0))
        framed.append(cell)
    return framed


def grid_infotexts(plot: Plot, fixed_seeds: bool) -> list[str]:
    """Parameters texts of [main grid, sub grids]: the first cell's text plus the plot's settings."""
    params = {"Script": TITLE, **plot.xs.params(fixed_seeds), **plot.ys.params(fixed_seeds)}
    texts = []
    for iz, z in enumerate(plot.zs.values):
        first = plot.cells[(0, 0, iz)].result
        text = first.infotexts[0] if first and first.infotexts else ""
        sub_params = dict(params)
        if plot.zs.option.label != "Nothing":
            sub_params[plot.zs.option.label] = z  # A1111 tags each sub grid with its Z value
        texts.append(api.add_params(text, sub_params))
    first = plot.cells[(0, 0, 0)].result
    main_text = first.infotexts[0] if first and first.infotexts else ""
    return [api.add_params(main_text, {**params, **plot.zs.params(fixed_seeds)}), *texts]


def assemble(
    p: JobContext,
    plot: Plot,
    grid_images: list[Any],
    texts: list[str],
    include_lone_images: bool,
    include_sub_grids: bool,
) -> GenerationResult:
    """The result: the main grid first, then sub grids and cell images if asked, with their texts."""
    subs = len(grid_images) - 1
    keep = 1 + subs if include_sub_grids and subs > 1 else 1  # with one Z value the sub grid is the grid
    cells = [
        plot.cells[(ix, iy, iz)]
        for iz in range(len(plot.zs.values))
        for iy in range(len(plot.ys.values))
        for ix in range(len(plot.xs.values))
    ]
    done = [cell.result for cell in cells if cell.result and cell.result.images]
    result = GenerationResult(
        images=grid_images[:keep],
        seeds=[],
        subseeds=[],
        prompts=[],
        negative_prompts=[],
        infotexts=texts[:keep],
        parameters=done[0].parameters if done else {},
        index_of_first_image=keep,
        interrupted=p.interrupted,
    )
    if include_lone_images:
        blank = blank_like(plot, p)
        result.images += [cell.image or blank for cell in cells]
        result.infotexts += [cell.result.infotexts[0] if cell.image else "" for cell in cells]
    for cell in done:
        result.seeds.append(cell.seeds[0])
        result.subseeds.append(cell.subseeds[0])
        result.prompts.append(cell.prompts[0])
        result.negative_prompts.append(cell.negative_prompts[0])
        result.saved_paths.extend(cell.saved_paths)
    return result


def save_grids(p: JobContext, result: GenerationResult, keep: int) -> None:
    prompt = result.prompts[0] if result.prompts else p.job.prompt
    seed = result.seeds[0] if result.seeds else p.seed
    for image, text in zip(result.images[:keep], result.infotexts[:keep], strict=True):
        saved = api.save_grid(p, image, "xyz_grid", text, prompt, seed)
        if saved:
            result.saved_paths.append(str(saved))


class XYZPlot(Script):
    def title(self) -> str:
        return TITLE

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr

        mode = "img2img" if is_img2img else "txt2img"
        labels = [option.label for option in axis_options(mode)]
        components: list[Any] = []
        fields = []
        for name, default in (("x", "Seed"), ("y", "Nothing"), ("z", "Nothing")):
            with gr.Row():
                axis_type = gr.Dropdown(
                    labels,
                    value=default,
                    label=f"{name.upper()} type",
                    elem_id=f"script_{mode}_xyz_plot_{name}_type",
                )
                values = gr.Textbox(
                    label=f"{name.upper()} values", lines=1, elem_id=f"script_{mode}_xyz_plot_{name}_values"
                )
                # Kept (hidden) so script_args have A1111's positions: type, text, dropdown list per axis.
                chosen = gr.Dropdown(
                    [], value=[], multiselect=True, visible=False, label=f"{name.upper()} values"
                )
            components += [axis_type, values, chosen]
            fields += [(axis_type, f"{name.upper()} Type"), (values, f"{name.upper()} Values")]
        with gr.Row():
            draw_legend = gr.Checkbox(label="Draw legend", value=True)
            no_fixed_seeds = gr.Checkbox(label="Keep -1 for seeds", value=False)
            vary = [gr.Checkbox(label=f"Vary seeds for {n}", value=False) for n in "XYZ"]
        with gr.Row():
            include_lone_images = gr.Checkbox(label="Include Sub Images", value=False)
            include_sub_grids = gr.Checkbox(label="Include Sub Grids", value=False)
            csv_mode = gr.Checkbox(label="Use text inputs instead of dropdowns", value=True, visible=False)
            margin_size = gr.Slider(label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2)
        self.infotext_fields = fields
        return [
            *components,
            draw_legend,
            include_lone_images,
            include_sub_grids,
            no_fixed_seeds,
            *vary,
            margin_size,
            csv_mode,
        ]

    def run(
        self,
        p: JobContext,
        x_type: Any = "Nothing",
        x_values: str = "",
        x_values_dropdown: Any = None,
        y_type: Any = "Nothing",
        y_values: str = "",
        y_values_dropdown: Any = None,
        z_type: Any = "Nothing",
        z_values: str = "",
        z_values_dropdown: Any = None,
        draw_legend: bool = True,
        include_lone_images: bool = False,
        include_sub_grids: bool = False,
        no_fixed_seeds: bool = False,
        vary_seeds_x: bool = False,
        vary_seeds_y: bool = False,
        vary_seeds_z: bool = False,
        margin_size: int = 0,
        csv_mode: bool = False,
    ) -> GenerationResult:
        fixed_seeds = not no_fixed_seeds
        axes = []
        for name, kind, text, chosen, vary in (
            ("X", x_type, x_values, x_values_dropdown, vary_seeds_x),
            ("Y", y_type, y_values, y_values_dropdown, vary_seeds_y),
            ("Z", z_type, z_values, z_values_dropdown, vary_seeds_z),
        ):
            option = find_axis(p.mode, kind)
            values = parse_values(option, text, chosen, csv_mode)
            if not values:
                raise ValueError(f"X/Y/Z plot: no {name} values for {option.label}")
            if fixed_seeds:
                values = fix_seeds(option, values)
            shown = ",".join(chosen) if chosen and not csv_mode else text
            axes.append(Axis(name, option, shown, values, bool(vary)))
        plot = Plot(*axes)
        check_plot(p, plot, fixed_seeds)
        run_cells(p, plot, fixed_seeds)
        grid_images = draw_grids(p, plot, bool(draw_legend), int(margin_size or 0))
        texts = grid_infotexts(plot, fixed_seeds)
        result = assemble(p, plot, grid_images, texts, bool(include_lone_images), bool(include_sub_grids))
        save_grids(p, result, result.index_of_first_image)
        return result
