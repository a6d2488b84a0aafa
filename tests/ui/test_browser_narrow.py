"""Narrow screens in a real browser (a phone at 400 px, a small laptop at 1024 px): the image buttons
keep their labels inside them and checkpoint names stay clear of the dropdown arrow."""

from __future__ import annotations

import pytest

from tests.ui.browser import open_app, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OVERFLOWING_BUTTONS = """() => [...document.querySelectorAll('.image-buttons button')]
    .filter(b => b.offsetParent && b.scrollWidth > b.clientWidth + 1).map(b => b.id)"""
# How far a dropdown's text reaches into its arrow (its text end against the arrow's left edge).
UNDER_ARROW = """sel => { const block = document.querySelector(sel); const input = block.querySelector('input');
    const arrow = block.querySelector('.icon-wrap'); const style = getComputedStyle(input);
    const textEnd = input.getBoundingClientRect().right - parseFloat(style.paddingRight);
    return [textEnd - arrow.getBoundingClientRect().left, style.textOverflow]; }"""


@pytest.mark.parametrize("width", [400, 1024])
def test_buttons_and_checkpoint_names_fit(browser, module_server, width):
    url, _ = module_server
    page = open_app(browser, url, viewport=(width, 900))
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.evaluate(OVERFLOWING_BUTTONS) == []
        buttons = page.locator("#image_buttons_txt2img button:visible")
        for i in range(buttons.count()):
            box = buttons.nth(i).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
        reach, overflow = page.evaluate(UNDER_ARROW, "#setting_sd_model_checkpoint")
        assert reach <= 0 and overflow == "ellipsis", reach
        page.locator("#image_buttons_txt2img").scroll_into_view_if_needed()
        shot(page, f"narrow-{width}-buttons")
        page.get_by_role("tab", name="Checkpoint Merger").click()
        page.locator("#modelmerger_primary_model_name").wait_for()
        reach, _ = page.evaluate(UNDER_ARROW, "#modelmerger_primary_model_name")
        assert reach <= 0, reach
        shot(page, f"narrow-{width}-merger")
    finally:
        page.close()
