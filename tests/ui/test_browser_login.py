"""The login page (--gradio-auth) in a real browser: dark as the app is, with the app's title."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageStat

from modules.ui.app import TITLE
from tests.ui.browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_login_page_is_dark_and_titled_then_opens_the_app(browser, server):
    url = server("--gradio-auth", "alice:secret")
    page = browser.new_page(viewport={"width": 1000, "height": 700})  # headless Chromium prefers light
    try:
        page.goto(url)
        password = page.locator("input[type=password]")
        password.wait_for(timeout=60_000)
        assert "__theme=dark" in page.url
        # Look at it: the whole page is dark, not only the form.
        picture = Image.open(io.BytesIO(page.screenshot())).convert("L")
        assert ImageStat.Stat(picture).mean[0] < 40
        title = page.get_by_text(TITLE, exact=True)
        username = page.locator("input").first
        assert title.is_visible() and title.bounding_box()["y"] < username.bounding_box()["y"]
        shot(page, "login")
        username.fill("alice")
        password.fill("secret")
        password.press("Enter")
        page.wait_for_selector("#txt2img_prompt textarea", timeout=60_000)
        assert "dark" in (page.evaluate("document.body.className") or "")
    finally:
        page.close()
