"""Inpainting in a real browser: the "Inpaint options" only on the sub-tabs that use them, and a mask
brush sized to the picture that leaves the picture visible under the mask."""

from __future__ import annotations

import pytest
from PIL import Image

from modules.ui import img2img
from tests.ui.browser import set_number, shot, small_job, wait_for_result

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# (sub-tab button, whether the "Inpaint options" show there), in an order that flips them each time
SUB_TABS = [
    ("img2img_inpaint_tab", True),
    ("img2img_img2img_sketch_tab", False),
    ("img2img_inpaint_sketch_tab", True),
    ("img2img_img2img_tab", False),
    ("img2img_inpaint_upload_tab", True),
    ("img2img_batch_tab", False),
    ("img2img_inpaint_tab", True),
    ("img2img_img2img_tab", False),
]
OPTIONS = "img2img_inpaint_controls"
BLUE, WHITE = (30, 60, 200), (255, 255, 255)

# The element's box if it is laid out with an area, else null (Gradio does not render hidden blocks).
BOX = """id => { const e = document.getElementById(id); if (!e) return null;
  const r = e.getBoundingClientRect(); return r.width * r.height > 0 ? [r.x, r.y, r.width, r.height] : null; }"""


def open_img2img(page) -> None:
    page.click("#tab_img2img-button")
    page.locator("#mode_img2img").wait_for(state="visible")


def wait_for_options(page, shown: bool, where: str) -> list[float] | None:
    """The options' box once they are shown (or None once hidden); the sub-tab's state follows a
    server round trip."""
    for _ in range(180):
        box = page.evaluate(BOX, OPTIONS)
        if (box is not None) == shown:
            return box
        page.wait_for_timeout(500)
    raise AssertionError(f"the Inpaint options are {'hidden' if shown else 'shown'} on {where}")


def brush_size(page, editor: str) -> int:
    """The size the editor's brush-size slider shows (the toolbar's "Brush Size" popup)."""
    button = page.locator(f"#{editor}").get_by_role("button", name="Brush Size")
    button.click()
    value = int(page.locator(f"#{editor} input[type=range]").input_value())
    button.click()
    return value


def wait_for_brush(page, editor: str, radius: int) -> None:
    page.locator(f"#{editor}").get_by_role("button", name="Brush", exact=True).click()
    for _ in range(60):
        if brush_size(page, editor) == radius:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{editor}'s brush never became {radius} px")


def test_inpaint_options_show_only_on_the_inpaint_sub_tabs(page):
    open_img2img(page)
    assert page.evaluate(BOX, OPTIONS) is None  # on load: the img2img sub-tab
    settings = page.evaluate(BOX, "img2img_settings")
    for tab_id, shown in SUB_TABS:
        page.click(f"#{tab_id}-button")
        box = wait_for_options(page, shown, tab_id)
        if shown:  # laid out in the settings column, under the sub-tabs
            assert settings[0] <= box[0] and box[0] + box[2] <= settings[0] + settings[2] + 1, tab_id
            assert box[1] > page.evaluate(BOX, "mode_img2img")[1], tab_id
            assert box[3] > 50, tab_id
        shot(page, f"inpaint-options-{tab_id}")


def test_mask_brush_is_small_leaves_the_picture_visible_and_is_the_jobs_mask(page, module_server, tmp_path):
    open_img2img(page)
    page.click("#img2img_inpaint_tab-button")
    wait_for_options(page, True, "Inpaint")
    Image.new("RGB", (64, 64), BLUE).save(tmp_path / "blue.png")
    page.locator("#img2maskimg input[type=file]").set_input_files(str(tmp_path / "blue.png"))
    wait_for_brush(page, "img2maskimg", img2img.brush_radius((64, 64)))

    canvas = page.locator("#img2maskimg canvas").first
    box = canvas.bounding_box()
    y = box["y"] + box["height"] / 2
    start, end = box["x"] + box["width"] * 0.35, box["x"] + box["width"] * 0.65
    page.mouse.move(start, y)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(start + (end - start) * i / 20, y)
    page.mouse.up()
    page.mouse.move(0, 0)  # the brush cursor off the picture
    page.wait_for_timeout(500)
    canvas.screenshot(path=str(tmp_path / "canvas.png"))
    shot(page, "inpaint-stroke")

    with Image.open(tmp_path / "canvas.png") as shown:
        picture, stroke = measure(shown.convert("RGB"), round(box["width"] / 2), round(box["height"] / 2))
    top, bottom = picture
    assert bottom - top > 200  # the 64-px picture is shown fitted to the editor, several times larger
    # Translucent: the middle of the stroke is the picture blended with the mask colour.
    blend = zip(BLUE, WHITE, stroke["colour"], strict=True)
    assert all(min(a, b) + 10 < c < max(a, b) - 10 for a, b, c in blend), stroke
    # Small: the stroke is about a twelfth of the picture's side wide (Gradio's default was ~3/4).
    fraction = stroke["width"] / (bottom - top)
    assert 0.04 < fraction < 0.15, (stroke, picture)

    # The job inpaints exactly the stroke: with no blur, the picture is unchanged outside it.
    small_job(page, "img2img", steps=3, seed=77)
    set_number(page, "img2img_mask_blur", 0)
    set_number(page, "img2img_denoising_strength", 1)
    page.click("#img2img_generate")
    wait_for_result(page, "img2img", "Seed: 77,")
    _, data_dir = module_server
    (made,) = (data_dir / "outputs").glob("img2img-images/**/*-77-*.png")
    rows = stroke_rows(stroke, picture, 64)
    with Image.open(made) as result:
        changed = changed_rows(result.convert("RGB"))
    assert set(changed) <= set(rows) and len(changed) >= len(rows) - 3, (changed, rows)


def measure(image: Image.Image, x: int, y: int) -> tuple[tuple[int, int], dict]:
    """Down column x of a screenshot: the picture's top and bottom (blue or painted over), and the
    stroke through row y (its width in screen pixels and the colour at its middle)."""
    column = [image.getpixel((x, row)) for row in range(image.height)]
    blue = [row for row, p in enumerate(column) if close(p, BLUE)]
    painted = [row for row in range(blue[0], blue[-1] + 1) if not close(column[row], BLUE)]
    assert painted and painted[0] <= y <= painted[-1], (painted, y)
    assert painted == list(range(painted[0], painted[-1] + 1)), painted  # one stroke
    middle = column[(painted[0] + painted[-1]) // 2]
    return (blue[0], blue[-1]), {"width": len(painted), "rows": (painted[0], painted[-1]), "colour": middle}


def stroke_rows(stroke: dict, picture: tuple[int, int], side: int) -> range:
    """The image rows under the stroke (screen rows -> picture rows), one row of slack each side."""
    top, bottom = picture
    scale = side / (bottom - top + 1)
    first, last = stroke["rows"]
    return range(int((first - top) * scale) - 1, int((last - top) * scale) + 2)


def changed_rows(image: Image.Image) -> list[int]:
    return [
        y
        for y in range(image.height)
        if any(not close(image.getpixel((x, y)), BLUE) for x in range(image.width))
    ]


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_send_to_inpaint_opens_it_with_its_options_and_a_sized_brush(page):
    page.click("#tab_txt2img-button")
    small_job(page, seed=8)
    page.click("#txt2img_generate")
    wait_for_result(page, "txt2img", "Seed: 8,")
    page.click("#txt2img_send_to_inpaint")
    wait_for_options(page, True, "send to inpaint")
    assert page.locator("#img2img_inpaint_tab-button").get_attribute("aria-selected") == "true"
    wait_for_brush(page, "img2maskimg", img2img.brush_radius((64, 64)))
    page.click("#img2img_img2img_tab-button")
    wait_for_options(page, False, "img2img after send to inpaint")
