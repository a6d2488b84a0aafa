"""Pixel rules of inpainting (fill, masks, paste-back) checked against A1111's documented behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from modules.processing import imageops, img2img
from modules.processing.job import GenerationJob

BLUE = (40, 70, 220)


def hole_mask(size: int = 64, box: tuple[int, int, int, int] = (16, 16, 47, 47)) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def test_fill_takes_the_colour_around_the_hole():
    filled = np.asarray(imageops.fill_masked(Image.new("RGB", (64, 64), BLUE), hole_mask()), dtype=int)
    # Premultiplied blurs: a uniform image fills with its own colour up to premultiplying's rounding
    # (A1111 gives (39, 70, 219) in the middle; unpremultiplied blurs gave (24, 44, 138)).
    assert tuple(filled[32, 32]) == (39, 70, 219)
    assert np.abs(filled[16:48, 16:48] - BLUE).max() <= 6
    assert (filled[:16] == BLUE).all() and (filled[48:] == BLUE).all()  # kept pixels unchanged


@pytest.mark.parametrize(("fill", "filled"), [(0, True), (1, False), (2, True), (3, True)])
def test_masked_content_other_than_original_starts_from_the_fill(fill, filled):
    job = GenerationJob(width=64, height=64, mask=hole_mask(), mask_blur=0, inpainting_fill=fill)
    source = Image.new("RGB", (64, 64), BLUE)
    ImageDraw.Draw(source).rectangle((16, 16, 47, 47), fill=(0, 0, 0))  # what the hole hides
    prepared = img2img.prepare(job, source)
    hole = np.asarray(prepared.image)[32, 32]
    assert (np.abs(hole.astype(int) - BLUE).max() <= 6) == filled


def reference_blur(mask: np.ndarray, sigma: int) -> np.ndarray:
    """OpenCV's GaussianBlur as A1111 calls it: kernel 2*int(2.5*sigma+0.5)+1, across then down, 8-bit
    rounding after each pass, borders mirrored without repeating the edge (numpy's "reflect")."""
    size = 2 * int(2.5 * sigma + 0.5) + 1
    kernel = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    out = mask.astype(np.float64)
    for axis in (1, 0):
        padded = np.pad(out, [(size // 2,) * 2 if a == axis else (0, 0) for a in (0, 1)], mode="reflect")
        out = np.apply_along_axis(lambda line: np.convolve(line, kernel, mode="valid"), axis, padded)
        out = np.clip(np.rint(out), 0, 255)
    return out


@pytest.mark.parametrize("blur", [1, 4, 8])
def test_mask_blur_is_a1111s_gaussian(blur):
    blurred = imageops.blur_mask(hole_mask(), blur)
    assert np.array_equal(np.asarray(blurred), reference_blur(np.asarray(hole_mask()), blur))


RED, GREEN = (220, 40, 40), (40, 200, 40)


def pasted_back(**kw) -> np.ndarray:
    job = GenerationJob(width=64, height=64, mask=hole_mask(), inpainting_fill=1, **kw)
    prepared = img2img.prepare(job, Image.new("RGB", (64, 64), RED))
    return np.asarray(img2img.paste_back([prepared], True)(0, Image.new("RGB", (64, 64), GREEN)), dtype=float)


def test_whole_picture_result_is_pasted_back_with_the_doubled_blurred_mask():
    out = pasted_back(mask_blur=4)
    weight = np.minimum(1, 2 * reference_blur(np.asarray(hole_mask()), 4) / 255)[..., None]
    expected = weight * np.array(GREEN) + (1 - weight) * np.array(RED)
    assert np.abs(out - expected).max() <= 2  # 8-bit premultiplying rounds
    original_share = (out[32, :, 1] - GREEN[1]) / (RED[1] - GREEN[1])
    assert original_share[16] == 0  # the painted edge is all new pixels (45.6% original before)
    assert 0 < original_share[15] < 0.15 and original_share[8] > 0.9  # the blur fades outward


def test_only_masked_result_is_pasted_back_with_the_blurred_mask_as_is():
    out = pasted_back(mask_blur=4, inpaint_full_res=True, inpaint_full_res_padding=8)
    weight = (reference_blur(np.asarray(hole_mask()), 4) / 255)[..., None]
    expected = weight * np.array(GREEN) + (1 - weight) * np.array(RED)
    assert np.abs(out - expected).max() <= 2  # 8-bit premultiplying rounds


@pytest.mark.parametrize(
    ("region", "size", "image_size", "expected"),
    [  # A1111's expand_crop_region on these inputs
        ((45, 145, 106, 147), (128, 64), (118, 149), (45, 119, 106, 149)),
        ((212, 0, 213, 153), (128, 512), (214, 228), (176, 0, 214, 153)),
        ((20, 239, 25, 241), (768, 128), (35, 269), (17, 239, 29, 241)),
        ((91, 21, 92, 22), (128, 64), (125, 23), (91, 21, 93, 22)),
    ],
)
def test_only_masked_region_grows_as_a1111s(region, size, image_size, expected):
    assert imageops.expand_region_to_ratio(region, *size, *image_size) == expected


def test_latent_mask_is_the_bicubic_rounded_mask():
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 27, 63), fill=255)  # ends mid-latent: bicubic says repaint
    small = imageops.latent_mask(mask, 8, 8)
    assert small[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]


def test_inpainting_pastes_the_generated_image_back_by_the_rule(runtime):
    source = Image.new("RGB", (64, 64), RED)
    job = GenerationJob(
        prompt="a green circle", steps=3, width=64, height=64, seed=3, sampler_name="Euler",
        do_not_save_samples=True, init_images=[source], mask=hole_mask(), mask_blur=4, inpainting_fill=1,
    )  # fmt: skip
    runtime.options.set("img2img_overlay_original", False)
    generated = np.asarray(runtime.img2img(job.derive()).images[0], dtype=float)
    runtime.options.set("img2img_overlay_original", True)
    out = np.asarray(runtime.img2img(job.derive()).images[0], dtype=float)
    weight = np.minimum(1, 2 * reference_blur(np.asarray(hole_mask()), 4) / 255)[..., None]
    assert np.abs(out - (weight * generated + (1 - weight) * np.array(RED))).max() <= 2


def transparent_mask(rgb: tuple[int, int, int], alpha_inside: int) -> Image.Image:
    """An API client's mask: transparent outside the hole, ``alpha_inside`` in it, colour ``rgb`` all over."""
    mask = Image.new("RGBA", (64, 64), (*rgb, 0))
    ImageDraw.Draw(mask).rectangle((16, 16, 47, 47), fill=(*rgb, alpha_inside))
    return mask


@pytest.mark.parametrize("rgb", [(0, 0, 0), (255, 255, 255)])
def test_a_transparent_mask_is_read_from_its_alpha(rgb):
    # Before: black RGB repainted nothing, white RGB everything; A1111 reads the alpha channel.
    read = imageops.binary_mask(transparent_mask(rgb, 255))
    assert read.mode == "L" and np.array_equal(np.asarray(read), np.asarray(hole_mask()))


def test_a_transparent_masks_alpha_is_rounded_at_128_unless_mask_round_is_off():
    assert np.asarray(imageops.binary_mask(transparent_mask((0, 0, 0), 129)))[32, 32] == 255
    assert np.asarray(imageops.binary_mask(transparent_mask((0, 0, 0), 128)))[32, 32] == 0
    assert (
        np.asarray(imageops.binary_mask(transparent_mask((0, 0, 0), 100), round_alpha=False))[32, 32] == 100
    )


def test_an_opaque_rgba_mask_is_read_by_its_luminance():
    mask = Image.merge("RGBA", (*hole_mask().convert("RGB").split(), Image.new("L", (64, 64), 255)))
    assert np.array_equal(np.asarray(imageops.binary_mask(mask)), np.asarray(hole_mask()))


def test_inpainting_repaints_where_a_transparent_mask_is_opaque(runtime):
    source = Image.new("RGB", (64, 64), RED)
    job = GenerationJob(
        prompt="a green circle", steps=3, width=64, height=64, seed=3, sampler_name="Euler",
        do_not_save_samples=True, init_images=[source], mask=transparent_mask((0, 0, 0), 255),
        mask_blur=0, inpainting_fill=1, denoising_strength=1.0,
    )  # fmt: skip
    out = np.asarray(runtime.img2img(job).images[0], dtype=int)
    assert (out[:16] == RED).all() and (out[48:] == RED).all()
    assert np.abs(out[20:44, 20:44] - RED).mean() > 10  # the hole was repainted


@pytest.mark.parametrize(("resize_mode", "left"), [(1, 32), (2, 0)])
def test_whole_picture_of_another_size_comes_back_at_the_jobs_size_in_place(runtime, resize_mode, left):
    # A 128x64 input for a 64x64 job: crop and resize shows its middle (x 32-95), resize and fill all
    # of it at half size. The mask covers input x 48-63 (x 16-31 of the job's frame when cropped).
    source = Image.new("RGB", (128, 64), RED)
    ImageDraw.Draw(source).rectangle((64, 0, 127, 63), fill=BLUE)
    mask = Image.new("L", (128, 64), 0)
    ImageDraw.Draw(mask).rectangle((48, 16, 63, 47), fill=255)
    job = GenerationJob(
        prompt="a green circle", steps=3, width=64, height=64, seed=3, sampler_name="Euler",
        do_not_save_samples=True, init_images=[source], mask=mask, mask_blur=0, inpainting_fill=1,
        denoising_strength=1.0, resize_mode=resize_mode,
    )  # fmt: skip
    out = np.asarray(runtime.img2img(job).images[0], dtype=int)
    framed = np.asarray(imageops.resize_image(resize_mode, source, 64, 64), dtype=int)
    assert out.shape == (64, 64, 3)  # the job's size (was the input's, with the result stretched over it)
    changed = np.argwhere((out != framed).any(axis=2))
    x1, x2 = (48 - left) * 64 // (128 - 2 * left), (64 - left) * 64 // (128 - 2 * left)
    # where the mask is in the frame (give or take the Lanczos ringing of a downscaled mask)
    assert changed[:, 1].min() >= x1 - 3 and changed[:, 1].max() <= x2 + 3
    assert len(changed) > 0.8 * (x2 - x1) * (32 if resize_mode == 1 else 16)
