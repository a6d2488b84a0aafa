"""Extensions in the UI without a browser: script controls -> job fields -> parameters text, pasting into
script controls, extension tabs, javascript/css, the Extensions tab, Extra Networks cards, progress ids."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import gradio as gr
import pytest
from PIL import Image

from modules.extensions import manage
from modules.processing.job import GenerationJob
from modules.ui import app, extensions, extra_networks, img2img, topbar, txt2img
from modules.ui.extra_networks import Card
from modules.ui.generation import Session, UiContext, paste_outputs, paste_updates
from modules.ui.scripts import NONE, ScriptControls, ScriptUi, paste_value
from modules.ui.tokens import TokenCounter
from tests.ui.test_ui_extensions_helpers import (
    LORA_NAME,
    loaded_extensions,
    make_runtime,
    write_extensions,
    write_lora,
)


@pytest.fixture(scope="module")
def ext_root(tmp_path_factory):
    return write_extensions(tmp_path_factory.mktemp("extensions"))


@pytest.fixture
def runtime(tmp_path, tiny_bundle, ext_root):
    registry, _ = loaded_extensions(ext_root)
    return make_runtime(tmp_path, registry, tiny_bundle)


@pytest.fixture
def demo(runtime):
    return app.build(runtime)


def handler(demo: gr.Blocks, api_name: str):
    return next(fn for fn in demo.fns.values() if fn.api_name == api_name)


def component(demo: gr.Blocks, elem_id: str) -> gr.components.Component:
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def generate(demo: gr.Blocks, values: dict[str, object], tab: str = "txt2img") -> str:
    """Run a tab's Generate handler with default values except ``values`` (by elem_id); returns the
    parameters text of the result."""
    fn = handler(demo, tab)
    args = [values[c.elem_id] if c.elem_id in values else default(c) for c in fn.inputs]
    *_, last = run_handler(fn.fn, None, *args)
    text = last[7]
    assert isinstance(text, str) and text, f"no result: {last[3]}"
    return text


def run_handler(fn, *args) -> list:
    """Every item an async generator handler yields (what Gradio streams to the page)."""

    async def collect() -> list:
        return [item async for item in fn(*args)]

    return asyncio.run(collect())


def default(control: gr.components.Component) -> object:
    """A control's initial value as its handler receives it from the page."""
    if isinstance(control, gr.Textbox) and control.value is None:
        return ""  # the page sends "" for an empty textbox
    if isinstance(control, gr.Radio):
        return control.preprocess(control.value)  # type="index" radios hand over the index
    return control.value


SMALL = {"txt2img_steps": 2, "txt2img_width": 64, "txt2img_height": 64, "txt2img_seed": 5}


def test_script_dropdown_lists_selectable_scripts_per_tab(demo, runtime):
    t2i = component(demo, "txt2img_script").choices
    i2i = component(demo, "img2img_script").choices
    titles = [c[0] for c in t2i]
    assert titles[0] == NONE
    assert "Test multiplier" in titles and "X/Y/Z plot" in titles
    assert "Outpainting mk2" not in titles  # an img2img-only script
    assert "Outpainting mk2" in [c[0] for c in i2i]
    # The script whose ui() raised is left out and reported under its extension's name.
    assert "Broken ui" not in titles
    assert any(e.extension == "ui_test_ext" and "ui broken" in e.message for e in runtime.extensions.errors)


def test_always_on_script_gets_an_accordion_and_selectable_controls_start_hidden(demo):
    accordion = component(demo, "txt2img_script_test_flag")
    assert isinstance(accordion, gr.Accordion) and accordion.label == "Test flag"
    assert component(demo, "txt2img_script_test_multiplier").visible is False


def test_selected_script_and_always_on_values_reach_the_parameters_text(demo):
    text = generate(
        demo, {**SMALL, "txt2img_script": "Test multiplier", "test_factor": 7, "test_flag_enabled": True}
    )
    assert "Test factor: 7" in text
    assert "Test flag: True" in text


def test_img2img_passes_script_values_too(demo):
    small = {"img2img_steps": 2, "img2img_width": 64, "img2img_height": 64, "img2img_seed": 5}
    image = Image.new("RGB", (64, 64), (20, 120, 220))
    values = {**small, "img2img_image": image, "img2img_script": "Test multiplier", "test_factor": 4}
    text = generate(demo, values, tab="img2img")
    assert "Test factor: 4" in text and "Denoising strength" in text


def test_img2img_batch_tab_runs_the_folder(runtime, tmp_path):
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for name, colour in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
        Image.new("RGB", (64, 64), colour).save(source / f"{name}.png")
    job = GenerationJob(prompt="x", steps=2, width=64, height=64, denoising_strength=0.5)
    ctx = SimpleNamespace(runtime=runtime)
    result = img2img.run_batch(ctx, job, {"input": str(source), "output": str(output), "masks": ""})
    assert len(result.images) == 2
    assert sorted(p.stem for p in output.iterdir()) == ["a", "b"]
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, error in ((empty, "no images made"), (tmp_path / "missing", "input_dir")):
        with pytest.raises(ValueError, match=error):
            img2img.run_batch(ctx, job, {"input": str(folder), "output": "", "masks": ""})


def test_script_none_runs_no_script(demo):
    text = generate(demo, {**SMALL, "txt2img_script": NONE, "test_factor": 7, "test_flag_enabled": False})
    assert "Test factor" not in text and "Test flag" not in text
    assert "Steps: 2" in text


def test_script_controls_slice_values_per_script():
    with gr.Blocks():
        a, b1, b2, on = gr.Slider(), gr.Slider(), gr.Checkbox(), gr.Checkbox()
        dropdown = gr.Dropdown(choices=[NONE, "A", "B"], value=NONE)
    controls = ScriptControls(
        dropdown,
        [ScriptUi(None, "A", [a], []), ScriptUi(None, "B", [b1, b2], [])],
        [ScriptUi(None, "On", [on], [])],
    )
    assert controls.inputs() == [dropdown, a, b1, b2, on]
    job = GenerationJob()
    controls.apply(job, ["B", 1, 2, True, False])
    assert (job.script_name, job.script_args, job.alwayson_scripts) == (
        "B",
        [2, True],
        {"On": {"args": [False]}},
    )
    controls.apply(job, [NONE, 1, 2, True, True])
    assert job.script_name is None
    assert job.alwayson_scripts == {"On": {"args": [True]}}


def test_paste_fills_script_controls_after_infotext_pasted_callbacks(runtime):
    with gr.Blocks() as blocks:
        ctx = UiContext(runtime, runtime.styles, TokenCounter(runtime), Session(), topbar.build(runtime))
        form = txt2img.build(ctx).form
    outputs = paste_outputs(ctx, form)

    def pasted(text: str) -> dict[str, dict]:
        updates = dict(zip(map(id, outputs), paste_updates(ctx, form, text), strict=True))
        return {b.elem_id: updates[id(b)] for b in blocks.blocks.values() if id(b) in updates}

    # "Legacy factor" is renamed to "Test factor" by the test extension's infotext_pasted callback.
    updates = pasted("a cat\nSteps: 4, Seed: 9, Legacy factor: 6, Test flag: True, Script: Test multiplier")
    assert updates["txt2img_script"]["value"] == "Test multiplier"
    assert updates["test_factor"]["value"] == 6.0
    assert updates["test_flag_enabled"]["value"] is True
    assert updates["txt2img_steps"]["value"] == 4
    # A text without "Script:" selects "None" again (as A1111); absent script keys change nothing.
    plain = pasted("a cat\nSteps: 4")
    assert plain["txt2img_script"]["value"] == NONE
    assert "value" not in plain["test_factor"]


@pytest.mark.parametrize(
    ("current", "value", "expected"),
    [(3, "7", 7.0), (False, "True", True), (True, "False", False), ("x", 5, 5), (0.5, "oops", 0.5)],
)
def test_paste_value_converts_like_a1111(current, value, expected):
    with gr.Blocks():
        control = gr.Textbox() if isinstance(current, str) else gr.Number()
    control.value = current
    assert paste_value(control, "K", {"K": value})["value"] == expected
    assert paste_value(control, "K", {}) == gr.update()


def test_extension_tab_is_rendered_with_its_events(demo):
    tab = component(demo, "tab_test_tab")
    assert isinstance(tab, gr.Tab) and tab.label == "Test tab"
    box = component(demo, "test_tab_box")
    assert any(box in fn.inputs and box in fn.outputs for fn in demo.fns.values())
    labels = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab) and b.elem_id]
    # After the built-in tabs, before Settings and Extensions (A1111's order).
    assert labels.index("Checkpoint Merger") < labels.index("Test tab") < labels.index("Settings")


def test_page_head_and_css_carry_enabled_extensions_files(ext_root):
    _, found = loaded_extensions(ext_root)
    head, css = app.head_html("dark", found), app.css(found)
    assert "window.uiTestExtensionLoaded = true" in head
    assert "rgb(1, 2, 3)" in css
    for ext in found:
        ext.enabled = ext.name != "ui_test_ext"
    assert "uiTestExtensionLoaded" not in app.head_html("dark", found)
    assert "rgb(1, 2, 3)" not in app.css(found)


def test_extensions_tab_lists_extensions_and_shows_errors(runtime):
    listed = extensions.rows(runtime)
    names = [row[0] for row in listed]
    assert "lora" in names and "xyz_grid" in names
    assert all(row[1] is True for row in listed if row[0] == "lora")
    html = extensions.errors_html(runtime)
    assert "broken_ext" in html and "broken on purpose" in html


def test_extensions_apply_saves_disabled_list(runtime):
    table = extensions.rows(runtime)
    for row in table:
        row[extensions.ENABLED_COLUMN] = row[0] != "prompt_matrix"
    note = extensions.apply_enabled(runtime, table)
    assert "prompt_matrix disabled" in note and "Restart" in note
    assert manage.disabled_names(runtime) == ["prompt_matrix"]
    assert "Nothing changed" in extensions.apply_enabled(runtime, extensions.rows(runtime))


def test_extensions_tab_refuses_changes_when_listening(tmp_path, tiny_bundle, ext_root):
    registry, _ = loaded_extensions(ext_root)
    exposed = make_runtime(tmp_path, registry, tiny_bundle, "--listen")
    with gr.Blocks() as blocks:
        extensions.build(exposed)
    controls = {b.elem_id: b for b in blocks.blocks.values() if getattr(b, "elem_id", None)}
    for elem_id in ("extensions_apply", "extensions_update", "extensions_install", "extensions_install_url"):
        assert controls[elem_id].interactive is False
    assert controls["extensions_installed_table"].interactive is False
    assert "--enable-insecure-extension-access" in controls["extensions_note"].value
    table = extensions.rows(exposed)
    table[0][extensions.ENABLED_COLUMN] = False
    refused = extensions.guarded(lambda t: extensions.apply_enabled(exposed, t), 0)(table)
    assert "Error" in refused and "--enable-insecure-extension-access" in refused
    assert manage.disabled_names(exposed) == []


def test_install_without_source_says_so(runtime):
    _, shown = extensions.guarded(lambda s, n: extensions.install(runtime, s, n), 1)("  ", "")
    assert "give a git URL" in shown


@pytest.mark.parametrize(
    ("prompt", "text", "expected"),
    [
        ("", "<lora:a:1>", "<lora:a:1>"),
        ("a cat", "<lora:a:1>", "a cat <lora:a:1>"),
        ("a cat <lora:a:0.5>", "<lora:a:1>", "a cat"),  # any multiplier counts: a second click removes
        ("a cat <lora:ab:1>", "<lora:a:1>", "a cat <lora:ab:1> <lora:a:1>"),
        ("a cat", "emb", "a cat emb"),
        ("a cat emb", "emb", "a cat"),
    ],
)
def test_card_click_toggles_text_in_prompt(prompt, text, expected):
    assert extra_networks.toggle_in_prompt(prompt, text) == expected


def test_card_text_uses_the_multiplier_as_a1111_writes_it():
    assert extra_networks.card_text(Card("film", "lora", None), 1.0) == "<lora:film:1>"
    assert extra_networks.card_text(Card("film", "lora", None), 0.8) == "<lora:film:0.8>"
    assert extra_networks.card_text(Card("emb", None, None), 0.8) == "emb"


def test_lora_and_embedding_cards_are_listed_and_clicks_insert_tags(runtime):
    write_lora(runtime.paths.lora_dir)
    pages = {page.title: page for page in extra_networks.pages(runtime)}
    assert "Lora" in pages and "Lyco" not in pages  # one page for the lora/lyco aliases
    pages["Lora"].refresh()
    cards = pages["Lora"].cards()
    card = next(c for c in cards if c.name == LORA_NAME)
    assert card.preview and card.preview.endswith(f"{LORA_NAME}.png")
    assert extra_networks.card_image(card).getpixel((0, 0)) == (200, 30, 30)
    index = cards.index(card)
    assert extra_networks.clicked(runtime, "a cat", cards, index) == f"a cat <lora:{LORA_NAME}:1>"
    runtime.options.set(extra_networks.MULTIPLIER_KEY, 0.6)
    assert extra_networks.clicked(runtime, "", cards, index) == f"<lora:{LORA_NAME}:0.6>"
    names = [c.name for c in pages["Textual Inversion"].cards()]
    assert names == list(runtime.embeddings.embeddings)
