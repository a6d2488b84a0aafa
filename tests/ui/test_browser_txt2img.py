"""The txt2img tab in a real browser: generate, interrupt, keyboard habits, token counter, paste."""

from __future__ import annotations

import io
import re
import stat

import pytest
from PIL import Image, ImageChops, ImageStat

from modules import output_paths
from tests.ui.browser import (
    LOCAL,
    number,
    open_app,
    set_number,
    shot,
    small_job,
    text,
    type_prompt,
    wait_for_result,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def page(browser, module_server):
    url, _ = module_server
    requests: list[str] = []
    page = open_app(browser, url, requests)
    page.requests = requests  # kept for the offline test
    yield page
    page.close()


def test_page_loads_nothing_from_other_hosts_and_is_dark(page):
    assert page.requests, "no requests recorded"
    outside = [u for u in page.requests if not LOCAL.match(u) and not u.startswith(("data:", "blob:"))]
    assert outside == []
    # The "ui_theme" setting (dark) is applied through Gradio's own ?__theme parameter.
    assert "__theme=dark" in page.url
    assert "dark" in (page.evaluate("document.body.className") or "")


def test_generate_shows_image_and_parameters(page):
    type_prompt(page, "txt2img", "a red circle")
    small_job(page, seed=42)
    page.click("#txt2img_generate")
    info = wait_for_result(page, "txt2img", "Seed: 42")
    assert info.startswith("a red circle")
    assert "Steps: 3," in info and "Size: 64x64" in info
    assert page.locator("#txt2img_gallery img").count() >= 1
    # Under the parameters text, the time the job took, in A1111's words.
    taken = page.inner_text("#html_info_txt2img .performance")
    assert re.fullmatch(r"Time taken: (\d+ min\. )?\d+\.\d sec\.", taken.strip()), taken
    assert info.index("Seed: 42") < info.index("Time taken:")
    shot(page, "txt2img-generated")


def test_save_names_the_file_as_generated_images_are(page, module_server):
    """Save after the generation above: outputs/save/<number>-42-a red circle.png, not 00000--.png."""
    _, data_dir = module_server
    page.click("#save_txt2img")
    page.wait_for_function(
        "document.querySelector('#html_log_txt2img')?.innerText.includes('Saved:')", timeout=30_000
    )
    name = page.inner_text("#html_log_txt2img").split("Saved:")[1].strip()
    assert re.fullmatch(r"\d{5}-42-a red circle\.png", name), name
    saved = data_dir / "outputs" / "save" / name
    assert stat.S_IMODE(saved.stat().st_mode) == output_paths.FILE_MODE
    assert page.locator("#download_files_txt2img").is_visible()
    shot(page, "txt2img-saved")


def test_token_counter_counts_parsed_prompt(page):
    type_prompt(page, "txt2img", "red circle")
    page.wait_for_function("document.querySelector('#txt2img_token_counter').innerText.trim() === '2/75'")
    # 40 one-token words and 39 commas: past one 75-token chunk, so the limit grows to 150.
    type_prompt(page, "txt2img", ", ".join(["cat"] * 40))
    page.wait_for_function("document.querySelector('#txt2img_token_counter').innerText.trim() === '79/150'")
    # Emphasis syntax is parsed away, not counted: "(red:1.3)" is one token.
    type_prompt(page, "txt2img", "(red:1.3) circle")
    page.wait_for_function("document.querySelector('#txt2img_token_counter').innerText.trim() === '2/75'")


def test_ctrl_up_and_down_edit_weights(page):
    box = page.locator("#txt2img_prompt textarea")
    box.fill("a red circle")
    box.evaluate("el => el.setSelectionRange(3, 3)")  # caret inside "red"
    box.press("Control+ArrowUp")
    assert box.input_value() == "a (red:1.1) circle"
    box.press("Control+ArrowUp")
    assert box.input_value() == "a (red:1.2) circle"
    box.press("Control+ArrowDown")
    box.press("Control+ArrowDown")
    assert box.input_value() == "a red circle"


def test_ctrl_enter_generates(page):
    type_prompt(page, "txt2img", "a blue square")
    small_job(page, seed=7)
    page.locator("#txt2img_prompt textarea").press("Control+Enter")
    info = wait_for_result(page, "txt2img", "Seed: 7,")
    assert info.startswith("a blue square")


ICON_BUTTONS = {
    "txt2img_paste": "Read generation parameters",
    "txt2img_style_apply": "Apply styles",
    "txt2img_style_create": "Save style",
    "txt2img_res_switch_btn": "Swap width and height",
    "txt2img_random_seed": "Random seed",
    "txt2img_reuse_seed": "Reuse seed",
    "refresh_sd_model_checkpoint": "Refresh",
    "txt2img_open_folder": "Open images folder",
}


def button_pixels(locator) -> Image.Image:
    return Image.open(io.BytesIO(locator.screenshot())).convert("L")


def test_icon_buttons_have_tooltips_names_and_visible_icons(page):
    """Each icon button says what it does on hover (title) and to a screen reader (aria-label), and
    draws an icon of its own: no emoji font here, where emoji labels were identical empty boxes."""
    pictures = {}
    for elem_id, name in ICON_BUTTONS.items():
        button = page.locator(f"#{elem_id}")
        page.wait_for_function(
            "id => document.getElementById(id)?.getAttribute('aria-label')", arg=elem_id, timeout=10_000
        )
        assert button.get_attribute("aria-label") == name
        assert len(button.get_attribute("title") or "") > len(name) - 5
        assert page.get_by_role("button", name=name, exact=True).first.is_visible()
        pic = button_pixels(button)
        # The middle of the button (the icon) has ink: a dark picture with light strokes.
        w, h = pic.size
        middle = pic.crop((w // 4, h // 4, w * 3 // 4, h * 3 // 4))
        assert ImageStat.Stat(middle).stddev[0] > 20, elem_id
        pictures[elem_id] = middle.resize((24, 24))
    # Every icon differs from every other (empty boxes would all look the same).
    ids = list(pictures)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            diff = ImageStat.Stat(ImageChops.difference(pictures[a], pictures[b])).mean[0]
            assert diff > 4, (a, b, diff)
    # A labelled button keeps its text and gets the longer name.
    send = page.locator("#txt2img_send_to_img2img")
    assert send.inner_text().strip() == "img2img"
    assert send.get_attribute("aria-label") == "Send to img2img"
    assert "img2img tab" in send.get_attribute("title")
    shot(page, "txt2img-icons")


def test_gradios_own_icon_buttons_get_no_icon_box_of_ours(page):
    """Gradio's components have buttons of class "icon-button" too (the image editor's and the
    gallery's tools): the app's icon rule must not paint into them (under the old class name it drew
    a grey square before every image-editor tool)."""
    page.get_by_role("tab", name="img2img").click()
    page.get_by_role("tab", name="Inpaint", exact=True).click()
    page.wait_for_selector("#img2img_inpaint_tab button.icon-button", timeout=10_000)
    painted = page.evaluate(
        """() => [...document.querySelectorAll('button.icon-button')]
            .filter(b => !b.classList.contains('ui-icon') && b.getClientRects().length)
            .map(b => [b.title, getComputedStyle(b, '::before').content])"""
    )
    assert len(painted) >= 5  # Pan, Zoom in/out, Undo, Redo, Clear canvas
    assert [title for title, content in painted if content != "none"] == []
    page.get_by_role("tab", name="img2img", exact=True).last.click()
    page.get_by_role("tab", name="txt2img").click()


def test_hints_reach_buttons_rendered_later(page):
    """img2img's buttons, drawn when its tab opens, get their hints too."""
    page.get_by_role("tab", name="img2img").click()
    page.wait_for_function(
        "document.getElementById('img2img_random_seed')?.getAttribute('aria-label') === 'Random seed'",
        timeout=10_000,
    )
    assert "random seed" in page.locator("#img2img_random_seed").get_attribute("title")
    page.get_by_role("tab", name="txt2img").click()


def test_hires_fix_says_what_it_upscales_from_and_to(page):
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    page.get_by_text("Hires. fix", exact=True).click()
    label = page.locator("#txtimg_hr_finalres")
    page.locator("#txt2img_enable_hr input").check()
    set_number(page, "txt2img_hr_scale", 2)
    page.wait_for_function(
        "document.querySelector('#txtimg_hr_finalres')?.innerText.trim() === 'Upscaling from 64x64 to 128x128'",
        timeout=10_000,
    )
    set_number(page, "txt2img_height", 96)
    page.wait_for_function(
        "document.querySelector('#txtimg_hr_finalres').innerText.trim() === 'Upscaling from 64x96 to 128x192'",
        timeout=10_000,
    )
    assert label.is_visible()
    shot(page, "txt2img-hires-size")
    page.locator("#txt2img_enable_hr input").uncheck()
    page.wait_for_function("document.querySelector('#txtimg_hr_finalres').innerText.trim() === ''")
    set_number(page, "txt2img_height", 64)
    page.get_by_text("Hires. fix", exact=True).click()  # closed again, as the other tests expect


COUNT_CLICKS = """ids => { const first = !window.clicks; window.clicks = {};
  if (first) document.addEventListener('click', e => { const b = e.target.closest('button');
    if (b && ids.includes(b.id)) window.clicks[b.id] = (window.clicks[b.id] || 0) + 1; }, true); }"""


def clicks(page, elem_id: str) -> int:
    return page.evaluate("id => window.clicks[id] || 0", elem_id)


def long_batch(page, seed: int) -> None:
    """Two images of 150 steps each: time enough to press keys while the first one samples."""
    type_prompt(page, "txt2img", "a long batch")
    small_job(page, steps=150, size=256, seed=seed)
    set_number(page, "txt2img_batch_count", 2)


def gallery_count(page) -> int:
    return page.locator("#txt2img_gallery img").count()


def test_esc_interrupts_and_ctrl_enter_restarts_the_running_job(page):
    page.evaluate(COUNT_CLICKS, ["txt2img_generate", "txt2img_interrupt", "txt2img_skip"])
    long_batch(page, seed=21)
    page.locator("#txt2img_prompt textarea").press("Control+Enter")
    page.wait_for_selector("#txt2img_preview img", timeout=60_000)
    interrupt = page.locator("#txt2img_interrupt")
    assert "(Esc)" in interrupt.get_attribute("title")
    assert "(Alt+Enter)" in page.locator("#txt2img_skip").get_attribute("title")
    # Ctrl+Enter while it runs: A1111 interrupts the job and starts it again, with the edited prompt.
    type_prompt(page, "txt2img", "a restarted batch")
    page.locator("#txt2img_neg_prompt textarea").press("Control+Enter")
    wait_for_result(page, "txt2img", "a long batch", timeout=60_000)  # the first run, interrupted
    page.wait_for_function("window.clicks['txt2img_generate'] >= 2", timeout=60_000)
    assert clicks(page, "txt2img_interrupt") == 1
    page.wait_for_selector("#txt2img_preview img", timeout=60_000)
    shot(page, "txt2img-restarted")
    # Esc from anywhere on the page (here: the live preview, no text box) interrupts the new run within
    # its first image. (The progress bar over it lets clicks through to it.)
    page.locator("#txt2img_preview").click()
    page.keyboard.press("Escape")
    info = wait_for_result(page, "txt2img", "a restarted batch", timeout=60_000)
    assert clicks(page, "txt2img_interrupt") == 2
    assert "Seed: 21," in info
    assert "Steps: 150" in info
    assert gallery_count(page) == 1  # the second image of the batch never started
    assert page.locator("#txt2img_generate").is_visible()


def test_alt_enter_skips_the_current_image_and_goes_on(page):
    page.evaluate(COUNT_CLICKS, ["txt2img_generate", "txt2img_interrupt", "txt2img_skip"])
    long_batch(page, seed=22)
    page.click("#txt2img_generate")
    page.wait_for_selector("#txt2img_preview img", timeout=60_000)
    assert "image 1 of 2," in page.inner_text("#txt2img_progress")
    page.locator("#txt2img_prompt textarea").press("Alt+Enter")
    page.wait_for_function(
        "document.querySelector('#txt2img_progress')?.innerText.includes('image 2 of 2,')", timeout=60_000
    )
    assert clicks(page, "txt2img_skip") == 1
    page.keyboard.press("Escape")  # no need to wait for the second image
    wait_for_result(page, "txt2img", "Seed: 22,", timeout=60_000)
    assert gallery_count(page) == 3  # the skipped image, the interrupted one and their grid
    set_number(page, "txt2img_batch_count", 1)


def test_interrupt_stops_a_long_run_early(page):
    type_prompt(page, "txt2img", "a long run")
    small_job(page, steps=150, size=256, seed=5)
    page.click("#txt2img_generate")
    page.wait_for_selector("#txt2img_interrupt", state="visible")
    # Wait until sampling really runs (the bar names a step) and the live preview shows.
    page.wait_for_selector("#txt2img_preview img", timeout=60_000)
    bar = page.inner_text("#txt2img_progress")
    step = int(re.search(r"step (\d+)/150", bar).group(1))
    shot(page, "txt2img-progress")
    page.click("#txt2img_interrupt")
    info = wait_for_result(page, "txt2img", "Seed: 5,", timeout=60_000)
    assert step < 150
    assert "Steps: 150" in info
    assert page.locator("#txt2img_generate").is_visible()
    assert not page.locator("#txt2img_interrupt").is_visible()


PASTED = (
    "a cat in a hat\n"
    "Negative prompt: ugly, blurry\n"
    "Steps: 13, Sampler: Euler a, Schedule type: Karras, CFG scale: 4.5, Seed: 1234, Size: 96x128, "
    "Clip skip: 2, Denoising strength: 0.4, Hires upscale: 1.5, Hires steps: 5, Hires upscaler: Nearest"
)


def test_read_parameters_button_fills_every_field(page):
    page.locator("#txt2img_prompt textarea").fill(PASTED)
    page.click("#txt2img_paste")
    page.wait_for_function("document.querySelector('#txt2img_prompt textarea').value === 'a cat in a hat'")
    assert text(page, "txt2img_neg_prompt") == "ugly, blurry"
    assert number(page, "txt2img_steps") == 13
    assert page.locator("#txt2img_sampling input").input_value() == "Euler a"
    assert page.locator("#txt2img_scheduler input").input_value() == "Karras"
    assert number(page, "txt2img_cfg_scale") == 4.5
    assert page.locator("#txt2img_seed input").input_value() == "1234"
    assert (number(page, "txt2img_width"), number(page, "txt2img_height")) == (96, 128)
    assert number(page, "setting_CLIP_stop_at_last_layers") == 2
    page.get_by_text("Hires. fix", exact=True).click()  # a closed accordion renders no contents
    assert page.locator("#txt2img_enable_hr input").is_checked()
    assert number(page, "txt2img_hr_scale") == 1.5
    assert number(page, "txt2img_hires_steps") == 5
    assert number(page, "txt2img_denoising_strength") == 0.4
    assert page.locator("#txt2img_hr_upscaler input").input_value() == "Nearest"
    shot(page, "txt2img-pasted")
    set_number(page, "setting_CLIP_stop_at_last_layers", 1)  # leave the shared server as it was


def test_read_parameters_with_empty_prompt_takes_last_generation(page):
    page.locator("#txt2img_prompt textarea").fill("")
    page.click("#txt2img_paste")
    # The last run in this module was the interrupted one (seed 5, 150 steps).
    page.wait_for_function("document.querySelector('#txt2img_prompt textarea').value === 'a long run'")
    assert page.locator("#txt2img_seed input").input_value() == "5"
    assert number(page, "txt2img_steps") == 150


def test_gallery_shows_non_square_image_whole(page):
    """A 64x128 result is shown whole (letterboxed), in the gallery and in its full-screen view."""
    type_prompt(page, "txt2img", "a tall tower")
    small_job(page, seed=7)
    set_number(page, "txt2img_height", 128)
    page.click("#txt2img_generate")
    wait_for_result(page, "txt2img", "Size: 64x128")
    img = page.locator("#txt2img_gallery img").first
    page.wait_for_function("document.querySelector('#txt2img_gallery img')?.naturalHeight === 128")
    fit = img.evaluate("e => [getComputedStyle(e).objectFit, e.naturalWidth, e.naturalHeight]")
    assert fit == ["contain", 64, 128]
    # Look at the pixels: a whole tall picture in a wider box leaves plain bars left and right,
    # where a cropped one ("cover") fills the box edge to edge.
    box = img.bounding_box()
    assert box["width"] > box["height"] / 2 + 20, box
    pic = Image.open(io.BytesIO(img.screenshot())).convert("L")
    top, bottom = pic.height // 10, pic.height * 9 // 10  # clear of the gallery's label and buttons
    bar = pic.crop((0, top, max(2, pic.width // 10), bottom))
    middle = pic.crop((pic.width * 2 // 5, top, pic.width * 3 // 5, bottom))
    assert ImageStat.Stat(bar).stddev[0] < 3 < ImageStat.Stat(middle).stddev[0]
    shot(page, "txt2img-tall")
    img.click()
    full = page.locator("#txt2img_gallery img").first
    fit = full.evaluate("e => getComputedStyle(e).objectFit")
    assert fit == "contain"
    shot(page, "txt2img-tall-fullscreen")
