"""Every built-in script builds its Gradio controls, one per argument its run() takes."""

from __future__ import annotations

import inspect

import pytest

from .scripts_helpers import load_scripts


@pytest.mark.slow  # importing Gradio takes seconds
@pytest.mark.parametrize("is_img2img", [False, True])
def test_script_controls_match_run_arguments(is_img2img):
    import gradio as gr

    scripts = [s for s in load_scripts().scripts if s.show(is_img2img) is True]
    titles = {s.title() for s in scripts}
    expected = {"X/Y/Z plot", "Prompt matrix", "Prompts from file or textbox"}
    assert titles == (expected | {"Poor man's outpainting", "Outpainting mk2"} if is_img2img else expected)
    with gr.Blocks():
        for script in scripts:
            controls = script.ui(is_img2img)
            parameters = list(inspect.signature(script.run).parameters)[1:]
            assert len(controls) == len(parameters), script.title()
            assert all(isinstance(c, gr.components.Component) for c in controls)
