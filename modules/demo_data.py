"""The demo model's world: procedural 64x64 images of coloured shapes, their captions, and a judge.

Owns the vocabulary (colours, shapes, positions, sizes), the seeded renderer that makes training images,
the caption grammar the demo model was trained on, the held-out colour+shape pairs used for evaluation,
and ``judge``, which reads a generated image back into (shape colour, shape, background colour, position)
with plain pixel statistics so tests can check that the model follows prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

SIZE = 64
SUPERSAMPLE = 4  # shapes are drawn at 4x and averaged down, so edges are anti-aliased like real photos

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 50, 180),
    "white": (240, 240, 240),
    "black": (25, 25, 25),
}
# A colour the base model never saw; the textual-inversion embedding "demoteal" learns it.
TEAL = (0, 150, 150)
SHAPES = ("circle", "square", "triangle")
POSITIONS: dict[str, tuple[float, float]] = {
    "top left": (0.32, 0.32),
    "top right": (0.68, 0.32),
    "bottom left": (0.32, 0.68),
    "bottom right": (0.68, 0.68),
    "center": (0.5, 0.5),
}
# Half-extent as a fraction of the image side. On 8x8 latents a smaller shape does not survive the VAE:
# at 0.14 round trips read 91% of shapes right (small triangles came back as blobs), at 0.18 over 97%.
SIZES: dict[str, float] = {"small": 0.18, "large": 0.26}
# Emphasis on a colour word, "(red:1.4)", is drawn as that colour's saturation: the colour moved away
# from (weight > 1) or towards (weight < 1) this grey. Training captions carry such weights now and
# then, so the model learns what the web UI's emphasis does to its text conditioning.
NEUTRAL_GREY = 128.0

# Colour+shape pairs never drawn in training, in any background or position: the evaluation set.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "triangle"),
        ("green", "circle"),
        ("blue", "square"),
        ("yellow", "triangle"),
        ("purple", "square"),
        ("white", "circle"),
    }
)

# What the demo model draws best with, written into its checkpoint (``modules.models.recommended``) so
# the UI opens at them; docs/DEMO_MODEL.md has the measurements behind CFG and steps.
RECOMMENDED: dict[str, object] = {
    "width": SIZE,
    "height": SIZE,
    "cfg_scale": 4.0,
    "sampler_name": "DPM++ 2M",
    "steps": 20,
}

# An upright triangle has a quarter of its area in the top half of its bounding box, the others half;
# decoded small triangles are blobby (median 0.40), so the cut sits near the lowest circles (0.43).
TRIANGLE_TOP_SHARE = 0.42
# Fill ratio of the bounding box: circle pi/4, square 1; set between them from VAE-decoded renders, whose
# soft corners lower a square's ratio (medians measured: circle 0.78-0.82, square 0.89-0.93).
SQUARE_FILL = 0.86
BORDER_INSET = 3


@dataclass(frozen=True)
class Scene:
    """One image's content; ``caption`` renders the words the model is trained (and prompted) with."""

    colour: str
    shape: str
    background: str
    position: str
    size: str
    colour_weight: float = 1.0  # emphasis on the shape's colour word
    background_weight: float = 1.0  # emphasis on the background's colour word

    def caption(self, with_size: bool = True, with_position: bool = True) -> str:
        size = f"{self.size} " if with_size else ""
        colour = _emphasis(self.colour, self.colour_weight)
        background = _emphasis(self.background, self.background_weight)
        text = f"a {size}{colour} {self.shape} on a {background} background"
        return f"{text}, {self.position}" if with_position else text


def _emphasis(word: str, weight: float) -> str:
    return word if weight == 1.0 else f"({word}:{weight:g})"


def emphasised(rgb: tuple[int, int, int] | np.ndarray, weight: float) -> np.ndarray:
    """The colour that ``(word:weight)`` asks for: saturation scaled about a neutral grey, clipped."""
    return np.clip(NEUTRAL_GREY + weight * (np.asarray(rgb, np.float32) - NEUTRAL_GREY), 0, 255)


def training_pairs() -> list[tuple[str, str]]:
    return [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELD_OUT]


def held_out_pairs() -> list[tuple[str, str]]:
    return sorted(HELD_OUT)


def random_scene(rng: np.random.Generator, held_out: bool = False) -> Scene:
    """A scene from the training pairs (or from the held-out pairs), on a background of another colour."""
    pairs = held_out_pairs() if held_out else training_pairs()
    colour, shape = pairs[rng.integers(len(pairs))]
    backgrounds = [c for c in COLOURS if c != colour]
    return Scene(
        colour=colour,
        shape=shape,
        background=backgrounds[rng.integers(len(backgrounds))],
        position=list(POSITIONS)[rng.integers(len(POSITIONS))],
        size=list(SIZES)[rng.integers(len(SIZES))],
    )


def _shape_mask(shape: str, cx: float, cy: float, half: float) -> np.ndarray:
    n = SIZE * SUPERSAMPLE
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n
    dx, dy = x - cx, y - cy
    if shape == "circle":
        inside = dx * dx + dy * dy <= half * half
    elif shape == "square":
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    else:  # upright isosceles triangle filling the square's bounding box
        inside = (dy <= half) & (dy >= -half) & (np.abs(dx) <= (dy + half) / 2)
    return inside.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(1, 3))


def render(
    scene: Scene,
    rng: np.random.Generator | None = None,
    colour: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """The scene as a uint8 ``[64, 64, 3]`` array; ``rng`` adds small jitter to place, size and colours."""
    cx, cy = POSITIONS[scene.position]
    half = SIZES[scene.size]
    fg = emphasised(colour or COLOURS[scene.colour], scene.colour_weight)
    bg = emphasised(COLOURS[scene.background], scene.background_weight)
    if rng is not None:
        cx, cy = cx + rng.uniform(-0.04, 0.04), cy + rng.uniform(-0.04, 0.04)
        half *= rng.uniform(0.9, 1.1)
        fg = fg + rng.uniform(-16, 16, 3)
        bg = bg + rng.uniform(-16, 16, 3)
    alpha = _shape_mask(scene.shape, cx, cy, half)[..., None]
    image = alpha * fg + (1 - alpha) * bg
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def render_image(scene: Scene, rng: np.random.Generator | None = None) -> Image.Image:
    return Image.fromarray(render(scene, rng))


# --- judging generated images -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """What an image shows: nearest palette colours, shape by pixel statistics, position by the centroid."""

    colour: str
    shape: str
    background: str
    position: str
    fg_mean: tuple[float, float, float]
    bg_mean: tuple[float, float, float]
    fill_ratio: float
    top_share: float  # the shape's pixels in the top half of its bounding box
    area: float  # foreground pixels as a fraction of the image

    def matches(self, scene: Scene) -> bool:
        return (self.colour, self.shape, self.background) == (scene.colour, scene.shape, scene.background)


def nearest_colour(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]] | None = None) -> str:
    palette = palette or COLOURS
    names = list(palette)
    distances = [float(np.linalg.norm(np.asarray(rgb, float) - palette[n])) for n in names]
    return names[int(np.argmin(distances))]


def _largest_region(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, index=range(1, count + 1))
    return labels == 1 + int(np.argmax(sizes))


def foreground_mask(pixels: np.ndarray, threshold: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """The shape's pixels and the background colour (the median of a ring 3 pixels inside the border).

    Generated images have soft edges and stray specks: the mask keeps the largest connected region and
    cuts its edge halfway between background and shape colour, so blur does not change the shape's area.
    """
    # Not the outermost pixels: decoded images often have darker edges (VAE padding effects).
    ring = pixels[BORDER_INSET:-BORDER_INSET, BORDER_INSET:-BORDER_INSET]
    border = np.concatenate([ring[0], ring[-1], ring[:, 0], ring[:, -1]]).astype(np.float32)
    bg = np.median(border, axis=0)
    distance = np.linalg.norm(pixels.astype(np.float32) - bg, axis=-1)
    region = _largest_region(distance > threshold)
    if region.sum() < 4:
        return region, bg
    core = np.percentile(distance[region], 90)
    return _largest_region(distance > max(threshold, core / 2)), bg


def judge(image: Image.Image | np.ndarray) -> Judgement:
    """Read the shape colour, shape, background and position of a (generated) image."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    mask, bg = foreground_mask(pixels)
    if mask.sum() < 4:
        return Judgement("none", "none", nearest_colour(bg), "none", (0.0,) * 3, tuple(bg), 0.0, 0.0, 0.0)
    ys, xs = np.nonzero(mask)
    # The core of the shape (away from blurred edges) gives its colour.
    fg = np.median(pixels[mask].astype(np.float32), axis=0)
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    fill = float(mask.sum() / box)
    top_share = float((ys < (ys.min() + ys.max()) / 2).sum() / mask.sum())
    shape = "triangle" if top_share < TRIANGLE_TOP_SHARE else "square" if fill >= SQUARE_FILL else "circle"
    cx, cy = (xs.mean() + 0.5) / pixels.shape[1], (ys.mean() + 0.5) / pixels.shape[0]
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
    return Judgement(
        colour=nearest_colour(fg),
        shape=shape,
        background=nearest_colour(bg),
        position=position,
        fg_mean=tuple(float(v) for v in pixels[mask].astype(np.float32).mean(axis=0)),
        bg_mean=tuple(float(v) for v in bg),
        fill_ratio=fill,
        top_share=top_share,
        area=float(mask.mean()),
    )
