"""The other tabs in a real browser: PNG Info, send to img2img / extras, styles, settings and
ui-config.json surviving a restart."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image, PngImagePlugin

from tests.ui.browser import number, open_app, shot, small_job, text, type_prompt, wait_for_result
from tests.ui.conftest import start_server, stop_server, wait_for_http

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PARAMETERS = (
    "a green triangle\nNegative prompt: red\n"
    "Steps: 11, Sampler: Euler, Schedule type: Karras, CFG scale: 3.5, Seed: 99, Size: 64x96"
)


def png_with_parameters(path, parameters: str):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", (64, 96), (0, 128, 0)).save(path, pnginfo=info)
    return path


def test_png_info_reads_an_upload_and_sends_it_to_txt2img(page, tmp_path):
    page.get_by_role("tab", name="PNG Info").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(
        str(png_with_parameters(tmp_path / "in.png", PARAMETERS))
    )
    page.wait_for_function("document.querySelector('#pnginfo_html_info').innerText.includes('Seed: 99')")
    assert "a green triangle" in page.inner_text("#pnginfo_html_info")
    shot(page, "pnginfo")
    page.click("#pnginfo_send_to_txt2img")
    page.wait_for_function("document.querySelector('#txt2img_prompt textarea')?.value === 'a green triangle'")
    assert text(page, "txt2img_neg_prompt") == "red"
    assert number(page, "txt2img_steps") == 11
    assert (number(page, "txt2img_width"), number(page, "txt2img_height")) == (64, 96)


def test_send_to_img2img_then_generate(page):
    page.get_by_role("tab", name="txt2img").click()
    type_prompt(page, "txt2img", "a yellow moon")
    small_job(page, seed=3)
    page.click("#txt2img_generate")
    wait_for_result(page, "txt2img", "Seed: 3,")
    page.click("#txt2img_send_to_img2img")
    page.wait_for_selector("#img2img_image img", timeout=30_000)
    assert page.locator("#img2img_prompt textarea").input_value() == "a yellow moon"
    page.click("#img2img_generate")
    info = wait_for_result(page, "img2img", "Denoising strength: 0.75")
    assert info.startswith("a yellow moon") and "Seed: 3," in info
    shot(page, "img2img")


RECORD_BAR = """id => { window.bars = [];
  new MutationObserver(() => { const t = document.getElementById(id)?.innerText.trim();
    if (t && t !== window.bars.at(-1)) window.bars.push(t); })
  .observe(document.body, { childList: true, subtree: true, characterData: true }); }"""


def test_img2img_batch_is_one_bar_that_names_each_image(page, module_server):
    """A folder of two images: the bar says which image it makes and never starts again at 0%."""
    _, data_dir = module_server
    folder = data_dir / "batch-in"
    folder.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        Image.new("RGB", (64, 64), colour).save(folder / f"{i}.png")
    page.get_by_role("tab", name="img2img", exact=True).first.click()
    page.get_by_role("tab", name="Batch", exact=True).click()
    page.locator("#img2img_batch_input_dir textarea").fill(str(folder))
    small_job(page, "img2img", steps=60, seed=4)
    page.evaluate(RECORD_BAR, "img2img_progress")
    page.click("#img2img_generate")
    page.wait_for_function("(window.bars || []).some(t => t.includes('image 2 of 2,'))", timeout=120_000)
    shot(page, "img2img-batch-progress")
    wait_for_result(page, "img2img", "Seed: 4,", timeout=120_000)
    bars = page.evaluate("window.bars")
    percents = [int(b.split("%")[0]) for b in bars if b.split("%")[0].isdigit()]
    assert percents and percents == sorted(percents), bars
    assert any("image 1 of 2," in b for b in bars), bars
    page.locator("#img2img_img2img_tab-button, button#img2img_img2img_tab").first.click()


def test_send_to_extras_and_resize(page):
    page.get_by_role("tab", name="txt2img").click()
    page.click("#txt2img_send_to_extras")
    page.wait_for_selector("#extras_image img", timeout=30_000)
    page.click("#extras_generate")
    page.wait_for_function(
        "document.querySelector('#html_info_extras').innerText.includes('Postprocess upscale by: 2')"
    )
    # The source's parameters text is carried over, and names the file as a generated image's.
    assert "a yellow moon" in page.inner_text("#html_info_extras")
    assert re.search(r"Saved: \d{5}-3-a yellow moon\.png", page.inner_text("#html_info_extras"))
    page.wait_for_selector("#extras_gallery img")


def test_save_style_and_apply_it(page):
    page.get_by_role("tab", name="txt2img").click()
    type_prompt(page, "txt2img", "masterpiece, {prompt}")
    page.locator("#txt2img_neg_prompt textarea").fill("lowres")
    page.once("dialog", lambda dialog: dialog.accept("fancy"))
    page.click("#txt2img_style_create")
    page.locator("#txt2img_styles input").click()
    page.get_by_role("option", name="fancy").click()
    type_prompt(page, "txt2img", "a dog")
    page.locator("#txt2img_neg_prompt textarea").fill("")
    page.click("#txt2img_style_apply")
    page.wait_for_function(
        "document.querySelector('#txt2img_prompt textarea').value === 'masterpiece, a dog'"
    )
    assert text(page, "txt2img_neg_prompt") == "lowres"


def test_settings_and_ui_defaults_survive_a_restart(browser, tmp_path, free_port):
    url = f"http://127.0.0.1:{free_port}/"
    proc = start_server([], tmp_path, free_port)
    try:
        wait_for_http(url, proc)
        page = open_app(browser, url)
        page.get_by_role("tab", name="Settings").click()
        page.locator("#setting_samples_save input").uncheck()
        page.get_by_role("tab", name="User interface").click()
        page.locator("#setting_ui_theme").get_by_text("light").click()
        page.click("#settings_submit")
        page.wait_for_function(
            "document.querySelector('#settings_result').innerText.includes('2 settings changed')"
        )
        assert "Restart the server for ui_theme" in page.inner_text("#settings_result")
        page.close()
    finally:
        stop_server(proc)
    assert json.loads((tmp_path / "config.json").read_text())["samples_save"] is False
    ui_config = json.loads((tmp_path / "ui-config.json").read_text())
    assert ui_config["txt2img/Sampling steps/value"] == 20
    ui_config["txt2img/Sampling steps/value"] = 33
    (tmp_path / "ui-config.json").write_text(json.dumps(ui_config))

    proc = start_server([], tmp_path, free_port)
    try:
        wait_for_http(url, proc)
        page = open_app(browser, url)
        assert "__theme=light" in page.url
        assert number(page, "txt2img_steps") == 33
        page.get_by_role("tab", name="Settings").click()
        assert not page.locator("#setting_samples_save input").is_checked()
        shot(page, "settings-light")
        page.close()
    finally:
        stop_server(proc)


def test_settings_search_keeps_the_matching_settings_and_reload_ui_reloads(page):
    page.get_by_role("tab", name="Settings").click()
    page.locator("#settings_search textarea, #settings_search input").first.fill("preview method")
    page.wait_for_function(
        "document.querySelector('#settings_result')?.innerText.includes('1 settings match: Live previews (1)')"
    )
    # The matching section is open, with only the matching setting in it.
    method = page.locator("#setting_show_progress_type")
    method.wait_for(state="visible")
    assert page.locator("#setting_show_progress_every_n_steps").is_hidden()
    assert page.locator("#settings [role=tab][aria-selected=true]").inner_text().strip() == "Live previews"
    top = page.locator("#settings_search").bounding_box()
    assert method.bounding_box()["y"] > top["y"]  # shown under the search box, on the page
    shot(page, "settings-search")
    page.locator("#settings_search textarea, #settings_search input").first.fill("")
    page.locator("#setting_show_progress_every_n_steps").wait_for(state="visible")
    # Reload UI reloads the page (every control reads its saved value again).
    page.evaluate("window.beforeReload = true")
    page.click("#settings_restart_gradio")
    page.wait_for_function("() => window.beforeReload === undefined", timeout=60_000)
    page.wait_for_selector("#txt2img_prompt textarea", timeout=60_000)
