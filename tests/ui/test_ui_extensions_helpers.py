"""Test extensions written to a temporary folder and a runtime that loaded them with the built-in ones
(shared by test_ui_extensions.py and test_browser_extensions.py; holds no tests itself)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from modules import cmd_args
from modules.extensions import loader
from modules.extensions.registry import ExtensionRegistry
from modules.runtime import Runtime

SELECTABLE = """
import dataclasses

import gradio as gr

from modules.extensions.api import Script


class TestMultiplier(Script):
    def title(self):
        return "Test multiplier"

    def ui(self, is_img2img):
        factor = gr.Slider(1, 10, value=3, step=1, label="Test factor", elem_id="test_factor")
        self.infotext_fields = [(factor, "Test factor")]
        return [factor]

    def run(self, p, factor):
        job = dataclasses.replace(p.job, extra_generation_params={"Test factor": int(factor)})
        return p.process_images(job)


class BrokenUi(Script):
    def title(self):
        return "Broken ui"

    def ui(self, is_img2img):
        raise RuntimeError("ui broken on purpose")
"""

ALWAYSON = """
import gradio as gr

from modules.extensions.api import AlwaysVisible, Script, on_infotext_pasted, on_ui_tabs


class TestFlag(Script):
    def title(self):
        return "Test flag"

    def show(self, is_img2img):
        return AlwaysVisible

    def ui(self, is_img2img):
        enabled = gr.Checkbox(False, label="Test flag enabled", elem_id="test_flag_enabled")
        self.infotext_fields = [(enabled, "Test flag")]
        return [enabled]

    def process(self, p, enabled=False):
        if enabled:
            p.extra_generation_params["Test flag"] = True


@on_infotext_pasted
def rename_legacy_key(text, params):
    if "Legacy factor" in params:
        params["Test factor"] = params.pop("Legacy factor")


@on_ui_tabs
def test_tab():
    with gr.Blocks(analytics_enabled=False) as ui:
        box = gr.Textbox(label="Test tab box", elem_id="test_tab_box")
        button = gr.Button("Shout", elem_id="test_tab_button")
        button.click(lambda text: text.upper(), box, box)
    return [(ui, "Test tab", "test_tab")]
"""

JAVASCRIPT = "window.uiTestExtensionLoaded = true;\n"
STYLE = "#test_tab_box { outline: 3px solid rgb(1, 2, 3); }\n"
LORA_NAME = "tiny_test_lora"


def write_extensions(root: Path) -> Path:
    """A working test extension (scripts, callbacks, javascript, style.css) and one that fails to import."""
    ext = root / "ui_test_ext"
    (ext / "scripts").mkdir(parents=True)
    (ext / "javascript").mkdir()
    (ext / "scripts" / "selectable.py").write_text(SELECTABLE)
    (ext / "scripts" / "alwayson.py").write_text(ALWAYSON)
    (ext / "javascript" / "test.js").write_text(JAVASCRIPT)
    (ext / "style.css").write_text(STYLE)
    broken = root / "broken_ext" / "scripts"
    broken.mkdir(parents=True)
    (broken / "broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    return root


def write_lora(lora_dir: Path, name: str = LORA_NAME) -> Path:
    """A small kohya-style LoRA file (one text-encoder layer) with a preview image beside it."""
    from PIL import Image

    lora_dir.mkdir(parents=True, exist_ok=True)
    key = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    tensors = {
        f"{key}.lora_down.weight": torch.zeros(2, 8),
        f"{key}.lora_up.weight": torch.zeros(8, 2),
        f"{key}.alpha": torch.tensor(2.0),
    }
    path = lora_dir / f"{name}.safetensors"
    save_file(tensors, str(path), metadata={"ss_output_name": name, "ss_tag_frequency": json.dumps({})})
    Image.new("RGB", (32, 32), (200, 30, 30)).save(lora_dir / f"{name}.png")
    return path


def loaded_extensions(ext_root: Path) -> tuple[ExtensionRegistry, list[loader.Extension]]:
    """The built-in extensions plus the test ones, loaded by the real loader."""
    registry = ExtensionRegistry()
    found = loader.discover(set(), dirs=((loader.BUILTIN_DIR, True), (ext_root, False)))
    loader.load_scripts(found, registry)
    return registry, found


def make_runtime(data_dir: Path, registry: ExtensionRegistry, bundle, *flags: str) -> Runtime:
    runtime = Runtime(cmd_args.parse(["--data-dir", str(data_dir), "--device", "cpu", *flags]), registry)
    runtime.model_loader = lambda: bundle
    return runtime
