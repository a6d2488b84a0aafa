"""The generation controls follow the selected checkpoint's recommended defaults, in a real browser."""

from __future__ import annotations

import pytest

from modules import demo_data
from modules.models.loader import save_checkpoint
from modules.models.tiny import build_tiny_bundle
from modules.processing.job import JOB_FIELDS
from tests.ui.browser import number, open_app, set_number, shot, type_prompt, wait_for_result

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sampler(page, tab: str) -> str:
    return page.locator(f"#{tab}_sampling input").input_value()


def controls(page, tab: str) -> tuple:
    return (
        number(page, f"{tab}_width"),
        number(page, f"{tab}_height"),
        number(page, f"{tab}_cfg_scale"),
        sampler(page, tab),
        number(page, f"{tab}_steps"),
    )


def choose_checkpoint(page, name: str) -> None:
    page.locator("#setting_sd_model_checkpoint input").click()
    page.get_by_role("option", name=name).first.click()


DEMO = demo_data.RECOMMENDED
DEMO_VALUES = (DEMO["width"], DEMO["height"], DEMO["cfg_scale"], DEMO["sampler_name"], DEMO["steps"])
PLAIN = tuple(JOB_FIELDS[n].default for n in ("width", "height", "cfg_scale", "sampler_name", "steps"))


def test_controls_follow_the_model_unless_the_user_changed_them(browser, server, tmp_path):
    folder = tmp_path / "models" / "Stable-diffusion"
    folder.mkdir(parents=True)
    save_checkpoint(build_tiny_bundle(), folder / "tiny-plain.safetensors")  # recommends nothing
    page = open_app(browser, server())
    try:
        # The page opens at the bundled model's own defaults, on both generating tabs.
        page.wait_for_function("document.querySelector('#txt2img_width input[type=number]').value === '64'")
        assert controls(page, "txt2img") == DEMO_VALUES
        page.get_by_role("tab", name="img2img").click()
        assert controls(page, "img2img") == DEMO_VALUES
        page.get_by_role("tab", name="txt2img").click()
        # A newcomer's first picture: the README prompt, nothing else touched, comes out at 64x64.
        type_prompt(page, "txt2img", "a large red circle on a blue background")
        page.click("#txt2img_generate")
        info = wait_for_result(page, "txt2img", "Seed:")
        assert "Size: 64x64" in info and "CFG scale: 4.0" in info and "Sampler: DPM++ 2M" in info
        img = page.locator("#txt2img_gallery img").first
        page.wait_for_function("document.querySelector('#txt2img_gallery img')?.naturalWidth > 0")
        assert img.evaluate("e => [e.naturalWidth, e.naturalHeight]") == [64, 64]
        shot(page, "model-defaults-demo")

        # The user's width stays; the others go back to the plain defaults of a model without any.
        set_number(page, "txt2img_width", 96)
        choose_checkpoint(page, "tiny-plain.safetensors")
        page.wait_for_function("document.querySelector('#txt2img_height input[type=number]').value === '512'")
        assert controls(page, "txt2img") == (96, *PLAIN[1:])
        assert controls(page, "img2img") == PLAIN
        shot(page, "model-defaults-plain")

        # And back: the demo's values again, the user's width still the user's.
        choose_checkpoint(page, "demo-shapes-sd1.safetensors")
        page.wait_for_function("document.querySelector('#txt2img_height input[type=number]').value === '64'")
        assert controls(page, "txt2img") == (96, *DEMO_VALUES[1:])
        assert controls(page, "img2img") == DEMO_VALUES
    finally:
        page.close()
