"""Extensions in a real browser: a script's controls and values, an extension's tab, javascript and css,
the Extensions tab with a broken extension's error, and an Extra Networks card click.

The app runs in this process (as webui.py builds it) on the tiny model, with the test extensions of
test_ui_extensions_helpers loaded beside the built-in ones, so no test file lands in extensions/.
"""

from __future__ import annotations

import io
import socket

import pytest
from PIL import Image

from modules.ui import app
from tests.ui.browser import open_app, set_number, shot, small_job, type_prompt, wait_for_result
from tests.ui.test_ui_extensions_helpers import (
    LORA_NAME,
    loaded_extensions,
    make_runtime,
    write_extensions,
    write_lora,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
OTHER_LORA = "zeta_style"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, tiny_bundle):
    registry, found = loaded_extensions(write_extensions(tmp_path_factory.mktemp("extensions")))
    runtime = make_runtime(tmp_path_factory.mktemp("data"), registry, tiny_bundle)
    write_lora(runtime.paths.lora_dir)
    # A second LoRA whose preview is named as A1111 also allows, <name>.preview.png, in blue.
    write_lora(runtime.paths.lora_dir, OTHER_LORA)
    (runtime.paths.lora_dir / f"{OTHER_LORA}.png").rename(
        runtime.paths.lora_dir / f"{OTHER_LORA}.preview.png"
    )
    Image.new("RGB", (32, 32), (30, 30, 200)).save(runtime.paths.lora_dir / f"{OTHER_LORA}.preview.png")
    runtime.extensions.call("ui_settings", runtime.options)
    demo = app.build(runtime)
    demo.queue(default_concurrency_limit=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        theme=app.theme("dark"),
        css=app.css(found),
        head=app.head_html("dark", found),
        ssr_mode=False,
        quiet=True,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(browser, app_url):
    page = open_app(browser, app_url)
    yield page
    page.close()


def test_selected_script_controls_appear_and_their_value_reaches_the_parameters(page):
    assert not page.locator("#test_factor").is_visible()
    page.locator("#txt2img_script input").click()
    page.get_by_role("option", name="Test multiplier").click()
    page.locator("#test_factor").wait_for(state="visible")
    set_number(page, "test_factor", 6)
    page.get_by_text("Test flag", exact=True).click()  # open the always-on script's accordion
    page.locator("#test_flag_enabled input").check()
    type_prompt(page, "txt2img", "a red circle")
    small_job(page, steps=2, seed=11)
    page.click("#txt2img_generate")
    info = wait_for_result(page, "txt2img", "Seed: 11")
    assert "Test factor: 6" in info and "Test flag: True" in info
    shot(page, "extensions-script")


def test_extension_javascript_css_and_tab(page):
    assert page.evaluate("window.uiTestExtensionLoaded") is True
    page.get_by_role("tab", name="Test tab").click()
    box = page.locator("#test_tab_box textarea")
    box.fill("quiet")
    page.click("#test_tab_button")
    page.wait_for_function("document.querySelector('#test_tab_box textarea').value === 'QUIET'")
    outline = page.evaluate("getComputedStyle(document.getElementById('test_tab_box')).outlineColor")
    assert outline == "rgb(1, 2, 3)"


def test_extensions_tab_lists_extensions_and_the_broken_ones_error(page):
    page.get_by_role("tab", name="Extensions").click()
    table = page.locator("#extensions_installed_table")
    table.get_by_text("xyz_grid", exact=True).wait_for()
    errors = page.inner_text("#extensions_errors")
    assert "broken_ext" in errors and "broken on purpose" in errors
    shot(page, "extensions-tab")


def test_lora_card_click_inserts_its_tag(page):
    page.get_by_role("tab", name="txt2img").click()
    type_prompt(page, "txt2img", "a cat")
    page.click("#txt2img_extra_networks")
    page.get_by_role("tab", name="Lora").click()
    card = page.locator("#txt2img_lora_cards").get_by_text(LORA_NAME)
    card.wait_for()
    card.click()
    prompt = page.locator("#txt2img_prompt textarea")
    page.wait_for_function(
        "t => document.querySelector('#txt2img_prompt textarea').value === t",
        arg=f"a cat <lora:{LORA_NAME}:1>",
    )
    shot(page, "extensions-lora-card")
    card.click()  # a second click takes the tag out again
    page.wait_for_function("() => document.querySelector('#txt2img_prompt textarea').value === 'a cat'")
    assert prompt.input_value() == "a cat"


def card_names(page) -> list[str]:
    """The cards' names in the order shown."""
    text = page.inner_text("#txt2img_lora_cards")
    return sorted((n for n in (LORA_NAME, OTHER_LORA) if n in text), key=text.index)


def test_cards_show_their_previews_and_can_be_searched_and_sorted(page):
    page.get_by_role("tab", name="txt2img").click()
    if not page.locator("#txt2img_extra_search").is_visible():
        page.click("#txt2img_extra_networks")
    page.get_by_role("tab", name="Lora").click()
    page.locator("#txt2img_lora_cards").get_by_text(OTHER_LORA).wait_for()
    assert card_names(page) == [LORA_NAME, OTHER_LORA]
    # Look at the thumbnails: each card shows its own preview image (red, then blue), not a placeholder.
    thumbs = page.locator("#txt2img_lora_cards img")
    colours = []
    for i in range(2):
        picture = Image.open(io.BytesIO(thumbs.nth(i).screenshot())).convert("RGB")
        colours.append(picture.getpixel((picture.width // 2, picture.height // 2)))
    (r1, g1, b1), (r2, g2, b2) = colours
    assert r1 > 150 > max(g1, b1) and b2 > 150 > max(r2, g2), colours
    choose(page, "#txt2img_extra_sort", "Name, Z-A")
    page.wait_for_function(
        "([a, b]) => { const t = document.querySelector('#txt2img_lora_cards').innerText;"
        " return t.indexOf(a) >= 0 && t.indexOf(a) < t.indexOf(b); }",
        arg=[OTHER_LORA, LORA_NAME],
    )
    page.locator("#txt2img_extra_search input, #txt2img_extra_search textarea").first.fill("tiny")
    page.wait_for_function(
        "n => !document.querySelector('#txt2img_lora_cards').innerText.includes(n)", arg=OTHER_LORA
    )
    assert card_names(page) == [LORA_NAME]
    shot(page, "extra-networks-search")
    page.locator("#txt2img_extra_search input, #txt2img_extra_search textarea").first.fill("")
    choose(page, "#txt2img_extra_sort", "Default order")


def choose(page, selector: str, option: str) -> None:
    page.locator(f"{selector} input").click()
    page.get_by_role("option", name=option, exact=True).click()
