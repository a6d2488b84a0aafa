"""The top bar's checkpoint list in a real browser, on a first start (no hash cache): the bundled
model's title gains its hash when it is first loaded, and a page opened after that must still show it."""

from __future__ import annotations

import pytest

from tests.ui.browser import shot, small_job, type_prompt, wait_for_result

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHECKPOINT = "#setting_sd_model_checkpoint input"


def test_checkpoint_shown_with_its_hash_in_a_page_opened_after_the_first_load(page):
    type_prompt(page, "txt2img", "a large red circle on a blue background")
    small_job(page, steps=2, size=64, seed=3)
    page.click("#txt2img_generate")  # the job waits for the model: it is loaded (and hashed) after
    info = wait_for_result(page, "txt2img", "Seed: 3,", timeout=60_000)
    short_hash = info.split("Model hash: ")[1].split(",")[0]
    page.reload()
    page.wait_for_selector("#txt2img_prompt textarea", timeout=60_000)
    wanted = f"demo-shapes-sd1.safetensors [{short_hash}]"
    page.wait_for_function(
        "([sel, want]) => document.querySelector(sel)?.value === want",
        arg=[CHECKPOINT, wanted],
        timeout=20_000,
    )
    shot(page, "checkpoint-after-first-load")
