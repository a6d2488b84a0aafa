"""Small Playwright helpers for the browser tests: open the app, set Gradio controls, read them back."""

from __future__ import annotations

import re
from pathlib import Path

from tests.ui.conftest import SHOTS

LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1(:\d+)?/")


def open_app(browser, url: str, requests: list[str] | None = None, viewport=(1400, 1000)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    if requests is not None:
        page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("#txt2img_prompt textarea", timeout=60_000)
    return page


def set_number(page, elem_id: str, value: float) -> None:
    """Sliders and number boxes: type into their number field and leave it, as a user does."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Tab")


def number(page, elem_id: str) -> float:
    return float(page.locator(f"#{elem_id} input[type=number]").first.input_value())


def text(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def type_prompt(page, tab: str, prompt: str) -> None:
    box = page.locator(f"#{tab}_prompt textarea")
    box.fill(prompt)


def small_job(page, tab: str = "txt2img", steps: int = 3, size: int = 64, seed: int = 42) -> None:
    set_number(page, f"{tab}_steps", steps)
    set_number(page, f"{tab}_width", size)
    set_number(page, f"{tab}_height", size)
    page.locator(f"#{tab}_seed input").first.fill(str(seed))
    page.locator(f"#{tab}_seed input").first.press("Tab")


def wait_for_result(page, tab: str, contains: str, timeout: float = 120_000) -> str:
    page.wait_for_function(
        "([id, t]) => (document.getElementById(id)?.innerText || '').includes(t)",
        arg=[f"html_info_{tab}", contains],
        timeout=timeout,
    )
    return page.inner_text(f"#html_info_{tab}")


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
