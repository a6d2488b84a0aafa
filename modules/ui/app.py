"""The Gradio app: top bar and tabs. Each tab lives in its own module and only calls the runtime."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from modules import paths
from modules.runtime import Runtime
from modules.ui import txt2img

TITLE = "Stable Diffusion"


def build(runtime: Runtime) -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("txt2img", id="txt2img", elem_id="tab_txt2img"):
                txt2img.build(runtime)
    return demo


def head_html() -> str:
    """Our own scripts, inlined: the page must not load anything from another host."""
    scripts = sorted((paths.ROOT / "javascript").glob("*.js"))
    return "".join(f"<script>{Path(s).read_text(encoding='utf-8')}</script>" for s in scripts)


def css() -> str:
    return (paths.ROOT / "style.css").read_text(encoding="utf-8")


def theme(name: str) -> gr.themes.Base:
    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
