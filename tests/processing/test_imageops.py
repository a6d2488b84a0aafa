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
