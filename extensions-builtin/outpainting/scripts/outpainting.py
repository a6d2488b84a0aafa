"""Outpainting for img2img: grow the canvas on the chosen sides and inpaint the new border.

Two scripts, as in AUTOMATIC1111's web UI:
- "Poor man's outpainting": the border is filled as "Masked content" says, and the canvas is inpainted in
  tiles of the job's size that overlap by the expansion, only where a tile reaches the new border.
- "Outpainting mk2": one side at a time, the border is filled with noise matching the image's colours;
  the mask is blurred 4x the slider for pasting back and the latents use a sharper one (A1111's).
The canvas grows to a multiple of 64 pixels per side, split between the chosen directions as A1111
splits it (so 64 px with 32 px left and right grows by exactly 64). Pixels of the input away from the
mask's blur come back unchanged (the inpainting result is pasted over the original).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from modules.extensions.api import (
    MASKED_CONTENT,
    GenerationJob,
    GenerationResult,
    JobContext,
    Script,
    image_grid,
    save_grid,
    save_sample,
)

DIRECTIONS = ("left", "right", "up", "down")


@dataclass(frozen=True)
class Expansion:
    left: int
    right: int
    up: int
    down: int

    @classmethod
    def for_image(cls, width: int, height: int, pixels: int, directions: list[str]) -> Expansion:
        """Expansion per side; the new size is rounded up to a multiple of 64 as in A1111."""
        left, right, up, down = (pixels if d in directions else 0 for d in DIRECTIONS)
        target_w = math.ceil((width + left + right) / 64) * 64
        target_h = math.ceil((height + up + down) / 64) * 64
        if left:
            left = left * (target_w - width) // (left + right)
        if right:
            right = target_w - width - left
        if up:
            up = up * (target_h - height) // (up + down)
        if down:
            down = target_h - height - up
        return cls(left, right, up, down)


def outpaint_job(base: GenerationJob, **changes: Any) -> GenerationJob:
    """A plain one-image inpainting job from the script's job."""
    return base.derive(
        batch_size=1,
        n_iter=1,
        inpaint_full_res=False,
        do_not_save_samples=True,
        do_not_save_grid=True,
        **changes,
    )


def parse_directions(direction: Any) -> list[str]:
    chosen = [direction] if isinstance(direction, str) else list(direction or [])
    unknown = [d for d in chosen if d not in DIRECTIONS]
    if unknown:
        raise ValueError(f"Outpainting direction must be among {', '.join(DIRECTIONS)} (got {unknown})")
    return chosen


def masked_content_index(value: Any) -> int:
    index = MASKED_CONTENT.index(value) if isinstance(value, str) else int(value)
    if index not in range(len(MASKED_CONTENT)):
        raise ValueError(f"Masked content must be one of {', '.join(MASKED_CONTENT)} (got {value!r})")
    return index


# --- tiles (poor man's) -----------------------------------------------------------------------------


@dataclass
class Tile:
    x: int
    y: int
    image: Image.Image


def split_tiles(image: Image.Image, tile_w: int, tile_h: int, overlap: int) -> list[list[Tile]]:
    """Rows of tile_w x tile_h crops overlapping by ``overlap``, the last ones flush with the edges (A1111)."""
    cols = max(1, math.ceil((image.width - overlap) / (tile_w - overlap)))
    rows = max(1, math.ceil((image.height - overlap) / (tile_h - overlap)))
    dx = (image.width - tile_w) / (cols - 1) if cols > 1 else 0
    dy = (image.height - tile_h) / (rows - 1) if rows > 1 else 0
    grid = []
    for row in range(rows):
        y = int(row * dy)
        y = image.height - tile_h if y + tile_h >= image.height else y
        tiles = []
        for col in range(cols):
            x = int(col * dx)
            x = image.width - tile_w if x + tile_w >= image.width else x
            tiles.append(Tile(x, y, image.crop((x, y, x + tile_w, y + tile_h))))
        grid.append(tiles)
    return grid


def combine_tiles(grid: list[list[Tile]], width: int, height: int, overlap: int) -> Image.Image:
    """Put tiles back together, blending each overlap with a linear ramp (A1111's combine_grid)."""
    canvas = Image.new("RGB", (width, height))
    ramp = np.arange(overlap, dtype=np.float32) * 255 / max(overlap, 1)
    for tiles in grid:
        y, tile_h = tiles[0].y, tiles[0].image.height
        row = Image.new("RGB", (width, tile_h))
        ramp_w = Image.fromarray(np.repeat(ramp.reshape(1, -1), tile_h, axis=0).astype(np.uint8), "L")
        for tile in tiles:
            if tile.x == 0 or not overlap:
                row.paste(tile.image, (tile.x, 0))
                continue
            row.paste(tile.image.crop((0, 0, overlap, tile_h)), (tile.x, 0), mask=ramp_w)
            row.paste(tile.image.crop((overlap, 0, tile.image.width, tile_h)), (tile.x + overlap, 0))
        if y == 0 or not overlap:
            canvas.paste(row, (0, y))
            continue
        ramp_h = Image.fromarray(np.repeat(ramp.reshape(-1, 1), width, axis=1).astype(np.uint8), "L")
        canvas.paste(row.crop((0, 0, width, overlap)), (0, y), mask=ramp_h)
        canvas.paste(row.crop((0, overlap, width, tile_h)), (0, y + overlap))
    return canvas


def border_mask(size: tuple[int, int], e: Expansion, inset: int) -> Image.Image:
    """White (repaint) everywhere but the original, which is black shrunk by ``inset`` on expanded sides."""
    mask = Image.new("L", size, 255)
    width, height = size
    ImageDraw.Draw(mask).rectangle(
        (
            e.left + (inset if e.left else 0),
            e.up + (inset if e.up else 0),
            width - e.right - (inset if e.right else 0),
            height - e.down - (inset if e.down else 0),
        ),
        fill=0,
    )
    return mask


def poor_mans(
    p: JobContext, pixels: int, mask_blur: int, fill: int, directions: list[str]
) -> GenerationResult:
    init = p.job.init_images[0].convert("RGB")
    e = Expansion.for_image(init.width, init.height, pixels, directions)
    canvas = Image.new("RGB", (init.width + e.left + e.right, init.height + e.up + e.down))
    canvas.paste(init, (e.left, e.up))
    mask = border_mask(canvas.size, e, mask_blur * 2)
    tile_w, tile_h = min(p.job.width, canvas.width), min(p.job.height, canvas.height)
    overlap = min(pixels, tile_w - 8, tile_h - 8)  # tiles must advance; A1111 fails on such sizes instead
    tiles = split_tiles(canvas, tile_w, tile_h, overlap)
    mask_tiles = split_tiles(mask, tile_w, tile_h, overlap)
    seed, first = p.seed, None
    for tile_row, mask_row in zip(tiles, mask_tiles, strict=True):
        for tile, mask_tile in zip(tile_row, mask_row, strict=True):
            inside = (
                tile.x >= e.left
                and tile.x + tile_w <= canvas.width - e.right
                and tile.y >= e.up
                and tile.y + tile_h <= canvas.height - e.down
            )
            if inside or p.interrupted:
                continue  # tiles wholly inside the original need no work
            # A1111 doubles the blur slider for this script.
            job = outpaint_job(
                p.job,
                init_images=[tile.image],
                mask=mask_tile.image,
                mask_blur=mask_blur * 2,
                inpainting_fill=fill,
                width=tile_w,
                height=tile_h,
                seed=seed,
            )
            done = p.process_images(job)
            first = first or done
            seed = done.seeds[0] + 1  # each tile gets the next seed, as in A1111
            tile.image = done.samples[0]
    combined = combine_tiles(tiles, canvas.width, canvas.height, overlap)
    return finish(p, [combined], first)


# --- mk2 --------------------------------------------------------------------------------------------


def matched_noise(
    image: np.ndarray, mask: np.ndarray, falloff: float, color_variation: float, rng: np.random.Generator
) -> np.ndarray:
    """Fill the masked (1) area with noise in the colours of the unmasked area.

    A simplified take on A1111's spectral "matched noise": per-channel mean and spread of the known
    pixels, a noise whose detail falls off with ``falloff`` (larger: smoother), and ``color_variation``
    of independent per-channel noise.
    """
    known = mask[..., 0] < 0.5
    pixels = image[known] if known.any() else image.reshape(-1, 3)
    mean, std = pixels.mean(axis=0), pixels.std(axis=0) + 1e-3
    h, w, _ = image.shape
    shared = rng.standard_normal((h, w, 1))
    if falloff > 0:
        shared = _smooth(shared, falloff)
    noise = (1 - color_variation) * shared + color_variation * rng.standard_normal((h, w, 3))
    filled = np.clip(mean + std * noise, 0.0, 1.0)
    return image * (1 - mask) + filled * mask


def _smooth(noise: np.ndarray, falloff: float) -> np.ndarray:
    h, w, _ = noise.shape
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    weight = 1.0 / (1.0 + (np.sqrt(fx**2 + fy**2) * 8) ** falloff)
    smoothed = np.real(np.fft.ifft2(np.fft.fft2(noise[..., 0]) * weight))
    return (smoothed / (smoothed.std() + 1e-6))[..., None]


def expand_side(
    p: JobContext,
    image: Image.Image,
    side: str,
    amount: int,
    blur: int,
    falloff: float,
    color_variation: float,
    seed: int,
) -> tuple[Image.Image, GenerationResult]:
    """Grow ``image`` by ``amount`` on one side: noise-fill it, inpaint a strip there, paste it back."""
    horizontal = side in ("left", "right")
    width, height = (
        (image.width + amount, image.height) if horizontal else (image.width, image.height + amount)
    )
    offset = {"left": (amount, 0), "up": (0, amount)}.get(side, (0, 0))
    canvas = Image.new("RGB", (width, height))
    canvas.paste(image, offset)
    e = Expansion(*(amount if s == side else 0 for s in DIRECTIONS))
    mask = border_mask(canvas.size, e, blur)
    np_mask = np.asarray(mask, dtype=np.float64)[..., None] / 255
    noised = matched_noise(
        np.asarray(canvas, dtype=np.float64) / 255,
        np_mask,
        falloff,
        color_variation,
        np.random.default_rng(seed),
    )
    filled = Image.fromarray((noised * 255).round().astype(np.uint8), "RGB")
    # Process a strip of at most the job's size at the growing side (A1111 crops the same way).
    strip_w = min(p.job.width, width) if horizontal else width
    strip_h = min(p.job.height, height) if not horizontal else height
    x = 0 if side == "left" or not horizontal else width - strip_w
    y = 0 if side == "up" or horizontal else height - strip_h
    box = (x, y, x + strip_w, y + strip_h)
    job = outpaint_job(
        p.job,
        init_images=[filled.crop(box)],
        mask=mask.crop(box),
        # A1111's sharper latent mask: the latents repaint up to 2x the blur into the original, the
        # paste-back (whose mask is blurred 4x) stays softer.
        latent_mask=border_mask(canvas.size, e, blur * 2).crop(box),
        mask_blur=blur * 4,
        inpainting_fill=1,
        width=strip_w,
        height=strip_h,
        seed=seed,
    )
    done = p.process_images(job)
    filled.paste(done.samples[0], (x, y))
    return filled, done


def mk2(
    p: JobContext, pixels: int, mask_blur: int, directions: list[str], falloff: float, color_variation: float
) -> GenerationResult:
    init = p.job.init_images[0].convert("RGB")
    e = Expansion.for_image(init.width, init.height, pixels, directions)
    outputs, first = [], None
    for index in range(p.job.batch_size * p.job.n_iter):
        image, seed = init, p.seed + index
        for side in DIRECTIONS:
            amount = getattr(e, side)
            if amount and not p.interrupted:
                image, done = expand_side(p, image, side, amount, mask_blur, falloff, color_variation, seed)
                first = first or done
        outputs.append(image)
    return finish(p, outputs, first)


# --- results ------------------------------------------------------------------------------------------


def finish(p: JobContext, images: list[Image.Image], first: GenerationResult | None) -> GenerationResult:
    """The script's result: the grown images (after a grid of them when there are several), saved."""
    text = first.infotexts[first.index_of_first_image] if first else ""
    seed = first.seeds[0] if first else p.seed
    result = GenerationResult(
        images=list(images),
        seeds=[seed] * len(images),
        subseeds=[p.subseed] * len(images),
        prompts=[p.job.prompt] * len(images),
        negative_prompts=[p.job.negative_prompt] * len(images),
        infotexts=[text] * len(images),
        parameters=first.parameters if first else {},
        interrupted=bool(p.interrupted),
    )
    for image in images:
        saved = save_sample(p, image, text, p.job.prompt, seed)
        if saved:
            result.saved_paths.append(str(saved))
    if len(images) > 1 and p.settings["return_grid"]:
        grid = image_grid(images)
        result.images.insert(0, grid)
        result.infotexts.insert(0, text)
        result.index_of_first_image = 1
        saved = save_grid(p, grid, "grid", text, p.job.prompt, seed)
        if saved:
            result.saved_paths.append(str(saved))
    return result


def check_img2img(p: JobContext) -> None:
    if not p.job.init_images:
        raise ValueError("init_images: outpainting needs an input image")


class PoorMansOutpainting(Script):
    def title(self) -> str:
        return "Poor man's outpainting"

    def show(self, is_img2img: bool) -> bool:
        return is_img2img

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr

        pixels = gr.Slider(label="Pixels to expand", minimum=8, maximum=256, step=8, value=128)
        mask_blur = gr.Slider(label="Mask blur", minimum=0, maximum=64, step=1, value=4)
        fill = gr.Radio(label="Masked content", choices=list(MASKED_CONTENT), value="fill", type="index")
        direction = gr.CheckboxGroup(
            label="Outpainting direction", choices=list(DIRECTIONS), value=list(DIRECTIONS)
        )
        return [pixels, mask_blur, fill, direction]

    def run(
        self,
        p: JobContext,
        pixels: int = 128,
        mask_blur: int = 4,
        inpainting_fill: Any = 0,
        direction: Any = DIRECTIONS,
    ) -> GenerationResult:
        check_img2img(p)
        return poor_mans(
            p, int(pixels), int(mask_blur), masked_content_index(inpainting_fill), parse_directions(direction)
        )


class OutpaintingMk2(Script):
    def title(self) -> str:
        return "Outpainting mk2"

    def show(self, is_img2img: bool) -> bool:
        return is_img2img

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr

        info = gr.HTML(
            "<p>Recommended settings: Sampling Steps: 80-100, Sampler: Euler a, Denoising strength: 0.8</p>"
        )
        pixels = gr.Slider(label="Pixels to expand", minimum=8, maximum=256, step=8, value=128)
        mask_blur = gr.Slider(label="Mask blur", minimum=0, maximum=64, step=1, value=8)
        direction = gr.CheckboxGroup(
            label="Outpainting direction", choices=list(DIRECTIONS), value=list(DIRECTIONS)
        )
        falloff = gr.Slider(
            label="Fall-off exponent (lower=higher detail)", minimum=0.0, maximum=4.0, step=0.01, value=1.0
        )
        color_variation = gr.Slider(label="Color variation", minimum=0.0, maximum=1.0, step=0.01, value=0.05)
        return [info, pixels, mask_blur, direction, falloff, color_variation]

    def run(
        self,
        p: JobContext,
        info: Any = None,
        pixels: int = 128,
        mask_blur: int = 8,
        direction: Any = DIRECTIONS,
        noise_q: float = 1.0,
        color_variation: float = 0.05,
    ) -> GenerationResult:
        check_img2img(p)
        return mk2(
            p,
            int(pixels),
            int(mask_blur),
            parse_directions(direction),
            float(noise_q),
            float(color_variation),
        )
