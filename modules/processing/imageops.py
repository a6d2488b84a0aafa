"""Pixel-space helpers for img2img and inpainting: resize modes, masks, crop regions, fill, overlay.

Each behaviour mirrors what users know from AUTOMATIC1111's web UI, so the same inputs give the same
framing and the same blending.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from scipy import ndimage

from modules.processing.job import ResizeMode

LANCZOS = Image.Resampling.LANCZOS


def resize_image(mode: ResizeMode, image: Image.Image, width: int, height: int) -> Image.Image:
    """Fit ``image`` to width x height: stretch, cover and centre-crop, or fit and fill the bands.

    The latent upscale is done on latents by the caller; here it stretches like "Just resize".
    """
    mode = ResizeMode(mode)
    if mode in (ResizeMode.JUST_RESIZE, ResizeMode.LATENT_UPSCALE):
        return image.resize((width, height), LANCZOS)
    ratio, src_ratio = width / height, image.width / image.height
    if mode == ResizeMode.CROP_AND_RESIZE:
        scale_w = width if ratio > src_ratio else image.width * height // image.height
        scale_h = height if ratio <= src_ratio else image.height * width // image.width
        resized = image.resize((scale_w, scale_h), LANCZOS)
        canvas = Image.new("RGB", (width, height))
        canvas.paste(resized, (width // 2 - scale_w // 2, height // 2 - scale_h // 2))
        return canvas
    return _resize_and_fill(image, width, height)


def _resize_and_fill(image: Image.Image, width: int, height: int) -> Image.Image:
    ratio, src_ratio = width / height, image.width / image.height
    scale_w = width if ratio < src_ratio else image.width * height // image.height
    scale_h = height if ratio >= src_ratio else image.height * width // image.width
    resized = image.resize((scale_w, scale_h), LANCZOS)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(resized, (width // 2 - scale_w // 2, height // 2 - scale_h // 2))
    # A1111 compatibility: the empty bands are filled by stretching the image's outermost row/column.
    if ratio < src_ratio:
        fill = height // 2 - scale_h // 2
        if fill > 0:
            canvas.paste(resized.resize((width, fill), box=(0, 0, width, 0)), (0, 0))
            canvas.paste(
                resized.resize((width, fill), box=(0, resized.height, width, resized.height)),
                (0, fill + scale_h),
            )
    elif ratio > src_ratio:
        fill = width // 2 - scale_w // 2
        if fill > 0:
            canvas.paste(resized.resize((fill, height), box=(0, 0, 0, height)), (0, 0))
            canvas.paste(
                resized.resize((fill, height), box=(resized.width, 0, resized.width, height)),
                (fill + scale_w, 0),
            )
    return canvas


def binary_mask(mask: Image.Image, round_alpha: bool = True) -> Image.Image:
    """The mask a client sent as an L image, white = repaint. As A1111 (whose canvas and API clients send
    masks with transparency): an RGBA mask that is not fully opaque is read from its alpha channel,
    thresholded at 128 (above = repaint) unless ``round_alpha`` is off; any other mask by its luminance.
    """
    if mask.mode == "RGBA" and mask.getextrema()[-1] != (255, 255):
        alpha = mask.getchannel("A")
        return alpha.point(lambda value: 255 if value > 128 else 0) if round_alpha else alpha
    return mask.convert("L")


def prepare_mask(
    mask: Image.Image, size: tuple[int, int], invert: bool, blur: int, round_alpha: bool = True
) -> Image.Image:
    """The client's mask at ``size`` as an L image, white = repaint; optionally inverted ("Inpaint not
    masked") and blurred."""
    mask = binary_mask(mask, round_alpha)
    if mask.size != size:
        mask = mask.resize(size, LANCZOS)
    if invert:
        mask = ImageOps.invert(mask)
    return blur_mask(mask, blur) if blur > 0 else mask


def blur_mask(mask: Image.Image, blur: int) -> Image.Image:
    """A1111's mask blur: a Gaussian of sigma ``blur`` cut at 2.5 sigma (kernel 2*int(2.5*blur+0.5)+1),
    across then down, each pass rounded to 8 bits, edges mirrored without repeating the edge pixel (as
    OpenCV's GaussianBlur, which A1111 uses; PIL's box-blur approximation differs by up to 5 levels at
    blur 4, 19 at blur 16)."""
    size = 2 * int(2.5 * blur + 0.5) + 1
    offsets = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-(offsets**2) / (2 * blur**2))
    kernel /= kernel.sum()
    pixels = np.asarray(mask.convert("L"), dtype=np.float64)
    for axis in (1, 0):
        pixels = np.clip(np.rint(ndimage.correlate1d(pixels, kernel, axis=axis, mode="mirror")), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8), "L")


def double_mask(mask: Image.Image) -> Image.Image:
    """The mask the whole-picture result is pasted back with: A1111 doubles the blurred mask (clipped at
    255), so the blur's edge (about half) is already all new pixels and the blur fades only outward,
    into the kept area, instead of showing half the original at the painted edge."""
    doubled = np.clip(np.asarray(mask.convert("L"), dtype=np.float32) * 2, 0, 255)
    return Image.fromarray(doubled.astype(np.uint8), "L")


def masked_region(mask: Image.Image, padding: int) -> tuple[int, int, int, int] | None:
    """Bounding box (x1, y1, x2, y2) of the mask's non-zero pixels grown by padding, or None if empty."""
    box = mask.getbbox()
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return (
        max(x1 - padding, 0),
        max(y1 - padding, 0),
        min(x2 + padding, mask.width),
        min(y2 + padding, mask.height),
    )


def expand_region_to_ratio(
    region: tuple[int, int, int, int], width: int, height: int, image_width: int, image_height: int
) -> tuple[int, int, int, int]:
    """Grow a crop region to the target's aspect ratio (A1111's rule, so "only masked" crops and pastes
    the same pixels): the short side grows by the whole pixels it lacks, half (rounded down) before and
    the rest after; a region past the far edge shifts back, one before the near edge shifts forward,
    and the far edge is then clamped to the image."""
    x1, y1, x2, y2 = region
    ratio = width / height
    if (x2 - x1) / (y2 - y1) > ratio:
        y1, y2 = _grow(y1, y2, int((x2 - x1) / ratio - (y2 - y1)), image_height)
    else:
        x1, x2 = _grow(x1, x2, int((y2 - y1) * ratio - (x2 - x1)), image_width)
    return x1, y1, x2, y2


def _grow(start: int, end: int, extra: int, size: int) -> tuple[int, int]:
    start, end = start - extra // 2, end + extra - extra // 2
    if end >= size:
        start, end = start - (end - size), size
    if start < 0:
        start, end = 0, end - start
    return start, min(end, size)


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """ "Masked content: fill": replace the masked area with ever blurrier copies of its surroundings.

    The blurs run on premultiplied colour (PIL's "RGBa"), so the hole takes the colour around it rather
    than fading to the black of its empty pixels: a uniform image fills with its own colour, within
    the rounding of premultiplying (A1111 gives (39, 70, 219) for (40, 70, 220)). Like A1111, the
    result is the last, unblurred layer composited over the blurs: the kept pixels come out unchanged,
    and a blurred mask's edge blends the two.
    """
    keep = ImageOps.invert(mask.convert("L"))
    source = Image.new("RGBa", image.size)
    source.paste(image.convert("RGBA").convert("RGBa"), mask=keep)
    filled = Image.new("RGBA", image.size)
    for radius, repeats in ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)):
        blurred = source.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            filled.alpha_composite(blurred)
    return filled.convert("RGB")


def overlay_original(
    result: Image.Image,
    original: Image.Image,
    mask: Image.Image,
    region: tuple[int, int, int, int] | None = None,
) -> Image.Image:
    """Paste the generated pixels back over the original, blended by ``mask`` (255 = generated).

    As A1111, the original premultiplied by the inverted mask is alpha-composited over the result, so
    pixels where the mask is 0 come out identical to the original. With ``region`` ("only masked"),
    ``result`` is the processed crop and is first scaled (crop and resize) into that region; without,
    ``result``, ``original`` and ``mask`` have one size.
    """
    original = original.convert("RGB")
    if region is not None:
        x1, y1, x2, y2 = region
        placed = original.copy()
        placed.paste(
            resize_image(ResizeMode.CROP_AND_RESIZE, result.convert("RGB"), x2 - x1, y2 - y1), (x1, y1)
        )
        result = placed
    kept = Image.new("RGBa", original.size)
    kept.paste(original.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    pasted = result.convert("RGBA")
    pasted.alpha_composite(kept.convert("RGBA"))
    return pasted.convert("RGB")


def latent_mask(
    mask: Image.Image, latent_width: int, latent_height: int, round_mask: bool = True
) -> np.ndarray:
    """The mask at latent resolution as floats in 0..1 (1 = repaint); rounded as A1111 does by default.

    Bicubic, PIL's default that A1111 resizes it with: Lanczos keeps a latent more or less at the edge.
    """
    small = (
        np.asarray(
            mask.convert("L").resize((latent_width, latent_height), Image.Resampling.BICUBIC),
            dtype=np.float32,
        )
        / 255
    )
    return np.around(small) if round_mask else small
