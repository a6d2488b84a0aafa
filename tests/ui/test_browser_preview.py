"""The live preview in a real browser: over the output, at its size, blocky (nearest neighbour), and the
page does not move when it appears or goes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.ui.browser import shot, small_job, type_prompt, wait_for_result

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def box(page, selector: str) -> tuple[int, int, int, int]:
    """Where an element is on the page (not in the viewport: typing may scroll it)."""
    return tuple(
        page.locator(selector).first.evaluate(
            "e => { const r = e.getBoundingClientRect();"
            " return [r.x + scrollX, r.y + scrollY, r.width, r.height].map(Math.round); }"
        )
    )


def colour_runs(row: list[tuple[int, ...]]) -> int:
    """How many runs of one colour a row of pixels has (a blocky picture has few)."""
    return 1 + sum(1 for a, b in zip(row, row[1:], strict=False) if max(map(abs, map(int.__sub__, a, b))) > 2)


def test_preview_covers_the_output_at_its_size_and_moves_nothing(page):
    before = {name: box(page, f"#{name}") for name in ("txt2img_gallery", "image_buttons_txt2img")}
    type_prompt(page, "txt2img", "a large red circle on a blue background")
    small_job(page, steps=150, size=64, seed=5)
    page.click("#txt2img_generate")
    page.wait_for_function("document.querySelector('#txt2img_preview img')?.naturalWidth > 0", timeout=60_000)
    img = page.locator("#txt2img_preview img")
    # The output's size (64x64), drawn nearest-neighbour over the whole gallery box.
    assert img.evaluate("e => [e.naturalWidth, e.naturalHeight]") == [64, 64]
    assert img.evaluate("e => getComputedStyle(e).imageRendering") == "pixelated"
    gallery = box(page, "#txt2img_gallery")
    assert gallery == before["txt2img_gallery"]
    assert box(page, "#image_buttons_txt2img") == before["image_buttons_txt2img"]  # nothing pushed down
    covered = box(page, "#txt2img_preview")
    assert all(abs(a - b) <= 2 for a, b in zip(covered, gallery, strict=True)), (covered, gallery)
    shown = box(page, "#txt2img_preview img")
    assert min(shown[2], shown[3]) >= 0.9 * min(gallery[2], gallery[3])  # not a dot in a corner
    # Look at it: the 8x8 latent cells are big flat blocks, 8 (or fewer) colours across the middle.
    picture = Image.open(io.BytesIO(img.screenshot())).convert("RGB")
    side = min(picture.size)
    left = (picture.width - side) // 2
    row = [picture.getpixel((x, picture.height // 2)) for x in range(left + 2, left + side - 2)]
    assert colour_runs(row) <= 10, colour_runs(row)
    shot(page, "preview-running")
    page.click("#txt2img_interrupt")
    wait_for_result(page, "txt2img", "Seed: 5,", timeout=60_000)
    page.locator("#txt2img_preview").wait_for(state="hidden")
    result = page.locator("#txt2img_gallery img").first
    result.wait_for()
    assert box(page, "#txt2img_gallery") == before["txt2img_gallery"]
    shot(page, "preview-finished")


def test_gallery_toolbar_takes_clicks_after_a_job(page):
    """The (empty) progress overlay lies over the gallery's top edge: it must not swallow the clicks
    meant for the gallery's own Download / Fullscreen / Close buttons."""
    type_prompt(page, "txt2img", "a large red circle on a blue background")
    small_job(page, steps=3, size=64, seed=6)
    page.click("#txt2img_generate")
    wait_for_result(page, "txt2img", "Seed: 6,", timeout=60_000)
    page.locator("#txt2img_gallery img").first.click()
    for name in ("Download", "Fullscreen", "Close"):
        button = page.locator(f"#txt2img_gallery button[aria-label='{name}']").first
        button.wait_for()
        hit = button.evaluate(
            "b => { const r = b.getBoundingClientRect();"
            " return b.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)); }"
        )
        assert hit, f"something lies over the gallery's {name} button"
    shot(page, "gallery-opened")
    page.locator("#txt2img_gallery button[aria-label='Close']").first.click(timeout=5_000)
    page.locator("#txt2img_gallery button[aria-label='Close']").wait_for(state="detached", timeout=5_000)
