"""Icon buttons without a browser: every button of the built app either has a plain-text label or a
declared hint (name, tooltip, icon), and no label needs an emoji font."""

from __future__ import annotations

import gradio as gr
import pytest

from modules import cmd_args
from modules.runtime import Runtime
from modules.ui import app, icons


@pytest.fixture
def demo(tmp_path, tiny_bundle):
    runtime = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]))
    runtime.model_loader = lambda: tiny_bundle
    return app.build(runtime)


def buttons(demo: gr.Blocks) -> list[gr.Button]:
    return [block for block in demo.blocks.values() if isinstance(block, gr.Button)]


def hint_of(button: gr.Button) -> icons.Hint | None:
    kinds = [c.removeprefix("ui-hint-") for c in button.elem_classes or [] if c.startswith("ui-hint-")]
    return icons.HINTS[kinds[0]] if kinds else None


def test_every_icon_button_has_a_name_a_tooltip_and_an_svg_icon(demo):
    found = buttons(demo)
    assert len(found) > 20
    icon_only = [b for b in found if not str(b.value or "").strip()]
    assert {b.elem_id for b in icon_only} >= {
        "txt2img_paste",
        "txt2img_style_apply",
        "txt2img_style_create",
        "txt2img_res_switch_btn",
        "txt2img_random_seed",
        "txt2img_reuse_seed",
        "img2img_random_subseed",
        "refresh_sd_model_checkpoint",
        "txt2img_open_folder",
    }
    for button in icon_only:
        hint = hint_of(button)
        assert hint is not None, f"{button.elem_id} shows nothing and has no hint"
        assert hint.name and hint.tooltip and hint.icon, button.elem_id
        assert "ui-icon" in button.elem_classes


def test_no_button_label_needs_an_emoji_font(demo):
    for button in buttons(demo):
        label = str(button.value or "")
        # Emoji, dingbats, symbols and variation selectors all live above U+2000.
        assert all(ord(c) < 0x2000 for c in label), f"{button.elem_id}: {label!r}"


def test_css_draws_every_icon_and_the_page_carries_every_hint():
    css = icons.css()
    head = app.head_html("dark")
    for kind, hint in icons.HINTS.items():
        assert (f".ui-hint-{kind} {{ --icon: url(" in css) == bool(hint.icon)
        assert f'"ui-hint-{kind}": ' in head
    assert "window.sdwebuiHints || {}" in head  # hints.js, inlined as every script
    assert "</" not in icons.hints_script()[len("<script>") : -len("</script>")]
