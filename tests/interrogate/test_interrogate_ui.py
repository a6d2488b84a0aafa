"""The img2img tab's "Interrogate CLIP" handler without a browser: sub-tab image -> prompt; Batch -> files."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from modules.ui import img2img
from tests.interrogate.test_interrogator import make_runtime, picture


def values(**given):
    base = {name: None for name in img2img.Sources.__dataclass_fields__}
    base.update(mode=img2img.IMG2IMG, batch_input="", batch_output="", batch_masks="")
    base.update(given)
    return [base[name] for name in img2img.Sources.__dataclass_fields__]


def test_button_puts_the_caption_into_the_prompt(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path, tiny_clip_dir)
    run = img2img.interrogate_handler(SimpleNamespace(runtime=runtime), img2img.Sources)
    assert run(*values(init_image=picture().convert("RGBA"))) == runtime.interrogate(picture())
    with pytest.raises(gr.Error, match="no image in the img2img tab"):
        run(*values())


def test_batch_sub_tab_writes_captions(tmp_path, tiny_clip_dir):
    runtime = make_runtime(tmp_path / "data", tiny_clip_dir)
    folder = tmp_path / "in"
    folder.mkdir()
    picture().save(folder / "a.png")
    run = img2img.interrogate_handler(SimpleNamespace(runtime=runtime), img2img.Sources)
    run(*values(mode=img2img.BATCH, batch_input=str(folder)))
    assert (folder / "a.txt").read_text(encoding="utf-8").strip() == runtime.interrogate(picture())
    with pytest.raises(gr.Error, match="input_dir"):
        run(*values(mode=img2img.BATCH, batch_input=str(tmp_path / "missing")))


def test_missing_model_message_reaches_the_user(tmp_path):
    runtime = make_runtime(tmp_path)
    run = img2img.interrogate_handler(SimpleNamespace(runtime=runtime), img2img.Sources)
    with pytest.raises(gr.Error, match="models/CLIP"):
        run(*values(init_image=picture()))
