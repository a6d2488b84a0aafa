"""The UI's small parts without a browser: ui-config.json, job form mapping, extras resize, masks,
settings apply, merger names, extension table, app build."""

from __future__ import annotations

import json

import gradio as gr
import pytest
from PIL import Image

from modules import cmd_args
from modules.extensions import loader
from modules.processing import postprocess
from modules.processing.job import GenerationResult
from modules.runtime import Runtime
from modules.ui import extensions, extras, img2img, merger, settings
from modules.ui.form import USE_SAME_SAMPLER, JobForm
from modules.ui.generation import paste_settings, show_result
from modules.ui.ui_config import UiConfig


@pytest.fixture
def runtime(tmp_path, tiny_bundle):
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]))
    rt.model_loader = lambda: tiny_bundle
    return rt


def test_ui_config_writes_missing_defaults_and_applies_saved_ones(tmp_path):
    path = tmp_path / "ui-config.json"
    path.write_text(json.dumps({"txt2img/Sampling steps/value": 33, "txt2img/Sampler/value": "Nope"}))
    with gr.Blocks(), gr.Tab("t") as tab:
        steps = gr.Slider(1, 150, value=20, step=1, label="Sampling steps")
        sampler = gr.Dropdown(["Euler", "DDIM"], value="Euler", label="Sampler")
    config = UiConfig(path)
    config.apply(tab, "txt2img")
    config.save_if_needed()
    assert steps.value == 33
    assert sampler.value == "Euler"  # a stale choice is ignored
    saved = json.loads(path.read_text())
    assert saved["txt2img/Sampling steps/maximum"] == 150
    assert saved["txt2img/Sampling steps/value"] == 33


def test_job_form_coerces_values_and_maps_pasted_parameters():
    with gr.Blocks():
        form = JobForm()
        form.add("prompt", gr.Textbox())
        form.add("steps", gr.Slider(1, 150, value=20))
        form.add("sampler_name", gr.Dropdown(["Euler", "Euler a"], value="Euler"))
        form.add("enable_hr", gr.Checkbox())
        form.add("hr_sampler_name", gr.Dropdown([USE_SAME_SAMPLER, "Euler"], value=USE_SAME_SAMPLER))
    job = form.to_job(["x", 7.0, "Euler a", True, USE_SAME_SAMPLER])
    assert (job.prompt, job.steps, job.sampler_name, job.enable_hr, job.hr_sampler_name) == (
        "x",
        7,
        "Euler a",
        True,
        None,
    )
    assert isinstance(job.steps, int)
    text = "a cat\nSteps: 13, Sampler: DDIM, CFG scale: 4, Seed: 1, Hires upscale: 2, Hires upscaler: Latent"
    updates = form.paste_updates(paste_settings(text))
    values = [u.get("value", "unchanged") for u in updates]
    # DDIM is not a choice of this dropdown, so it stays as it was.
    assert values == ["a cat", 13, "unchanged", True, USE_SAME_SAMPLER]
    with pytest.raises(KeyError):
        form.add("not_a_field", gr.Textbox())


@pytest.mark.parametrize(
    ("settings", "size"),
    [
        (extras.settings_for(extras.SCALE_BY, 2.5, 0, 0, False, "Lanczos"), (96, 48)),  # multiples of 8
        (extras.settings_for(extras.SCALE_TO, 2.0, 32, 32, True, "Lanczos"), (32, 32)),
        (extras.settings_for(extras.SCALE_TO, 2.0, 32, 48, False, "Lanczos"), (96, 48)),  # keeps aspect
    ],
)
def test_extras_resize_sizes(settings, size):
    assert postprocess.upscale(Image.new("RGB", (40, 20)), settings)[0].size == size


def test_extras_scale_to_with_crop_keeps_the_centre():
    source = Image.new("RGB", (40, 20), "black")
    source.paste((255, 0, 0), (10, 0, 30, 20))  # a red middle half
    out, _ = postprocess.upscale(source, extras.settings_for(extras.SCALE_TO, 1.0, 16, 16, True, "Nearest"))
    assert out.size == (16, 16)
    assert out.getpixel((8, 8)) == (255, 0, 0)


def test_extras_keeps_parameters_and_adds_postprocessing(runtime, tmp_path):
    from modules import images

    source = tmp_path / "in.png"
    images.save_image(Image.new("RGB", (16, 16)), tmp_path, forced_filename="in", infotext="a cat\nSteps: 3")
    shown, html = extras.run(
        runtime, str(source), extras.settings_for(extras.SCALE_BY, 2, 0, 0, False, "Lanczos")
    )
    saved = next((runtime.paths.outputs_dir / "extras-images").glob("*.png"))
    with Image.open(saved) as image:
        assert image.size == (32, 32)
        assert image.info["parameters"] == "a cat\nSteps: 3"
        assert image.info["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: Lanczos"
    assert "a cat" in html and shown[0].size == (32, 32)


def test_inpaint_masks_from_editor_values():
    background = Image.new("RGB", (8, 8), "white")
    layer = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    layer.putpixel((2, 3), (0, 0, 0, 255))
    mask = img2img.layers_mask({"background": background, "layers": [layer]})
    assert mask.getpixel((2, 3)) == 255 and mask.getpixel((0, 0)) == 0
    composite = background.copy()
    composite.putpixel((5, 5), (255, 0, 0))
    sketch = img2img.sketch_mask({"background": background, "composite": composite})
    assert sketch.getpixel((5, 5)) == 255 and sketch.getextrema() == (0, 255)
    init, none = img2img.init_and_mask(img2img.SKETCH, {"sketch": {"composite": composite}})
    assert none is None and init.getpixel((5, 5)) == (255, 0, 0)
    # Inpaint upload passes the mask on with its transparency, which processing reads as A1111 does.
    upload = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    _, mask = img2img.init_and_mask(
        img2img.INPAINT_UPLOAD, {"upload_base": background, "upload_mask": upload}
    )
    assert mask.mode == "RGBA"


def test_inpaint_sketch_follows_a1111s_mask_transparency_and_blurred_composite():
    """Inpaint sketch: the mask is the sketched area dimmed by "Mask transparency" (A1111's
    ImageEnhance.Brightness(1 - alpha / 100)); the init image is the sketch blurred by the mask blur
    over the original through the blurred mask."""
    original = Image.new("RGB", (16, 16), (0, 0, 255))
    sketch = original.copy()
    sketch.paste((255, 0, 0), (4, 4, 12, 12))
    value = {"background": original, "composite": sketch}
    init, mask = img2img.init_and_mask(
        img2img.INPAINT_SKETCH, {"inpaint_sketch": value, "mask_alpha": 0}, mask_blur=0
    )
    assert mask.getpixel((8, 8)) == 255 and mask.getpixel((0, 0)) == 0
    assert init.getpixel((8, 8)) == (255, 0, 0) and init.getpixel((0, 0)) == (0, 0, 255)
    _, dimmed = img2img.init_and_mask(
        img2img.INPAINT_SKETCH, {"inpaint_sketch": value, "mask_alpha": 40}, mask_blur=0
    )
    assert dimmed.getpixel((8, 8)) == 153 and dimmed.getpixel((0, 0)) == 0  # 255 x 0.6
    soft, _ = img2img.init_and_mask(
        img2img.INPAINT_SKETCH, {"inpaint_sketch": value, "mask_alpha": 0}, mask_blur=2
    )
    red, _, blue = soft.getpixel((4, 8))  # the sketch's edge: red and blue blended
    assert 0 < red < 255 and 0 < blue < 255
    assert soft.getpixel((0, 0)) == (0, 0, 255)  # far from the sketch: the original


def test_inpaint_mask_from_a_translucent_stroke():
    """The mask brush paints at half opacity, antialiased at its edges: any alpha at all is masked."""
    background = Image.new("RGB", (8, 8), (30, 60, 200))
    layer = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    layer.putpixel((2, 3), (255, 255, 255, 128))
    layer.putpixel((3, 3), (255, 255, 255, 1))
    _, mask = img2img.init_and_mask(
        img2img.INPAINT, {"inpaint": {"background": background, "layers": [layer]}}
    )
    assert [mask.getpixel((x, 3)) for x in range(5)] == [0, 0, 255, 255, 0]
    assert mask.getextrema() == (0, 255) and mask.histogram()[255] == 2


def test_brushes_are_sized_to_the_picture_and_the_mask_one_is_translucent():
    assert img2img.brush_radius((64, 64)) == 3  # a 6-px brush on the bundled model's pictures
    assert img2img.brush_radius((768, 512)) == 21  # the shorter side counts
    assert img2img.brush_radius((8, 8)) == 1
    assert img2img.brush_radius(None) == 33  # the blank canvas
    mask = img2img.brushes((64, 64), mask=True)
    assert mask["brush"].default_size == mask["eraser"].default_size == 3
    assert all(0 < alpha < 1 for _, alpha in mask["brush"].colors)
    sent = img2img.inpaint_update(Image.new("RGB", (128, 96)))
    assert sent["brush"].default_size == 4 and sent["value"]["layers"] == []


def test_settings_apply_saves_changes_and_names_restart_ones(runtime):
    message = settings.apply(runtime, ["samples_save", "ui_theme", "eta_ddim"], [False, "light", 0.0])
    assert "2 settings changed" in message and "Restart the server for ui_theme" in message
    saved = json.loads(runtime.paths.config_file.read_text())
    assert saved == {"samples_save": False, "ui_theme": "light"}
    assert "error" in settings.apply(runtime, ["eta_ddim"], ["not a number"])


def test_settings_tab_leaves_out_top_bar_settings(runtime):
    keys = {info.key for infos in settings.grouped(runtime.options.definitions).values() for info in infos}
    assert "CLIP_stop_at_last_layers" not in keys and "samples_save" in keys


def test_merger_default_names_follow_a1111():
    assert merger.default_name("Weighted sum", "a", "b", None, 0.3) == "0.7(a) + 0.3(b)"
    assert merger.default_name("Add difference", "a", "b", "c", 0.5) == "a + 0.5(b - c)"


def test_extension_table_lists_folders(runtime):
    # The Extensions tab lists what manage.py finds: built-ins first (load order), each marked built-in.
    rows = extensions.rows(runtime)
    folders = [p for p in loader.BUILTIN_DIR.iterdir() if p.is_dir() and not p.name.startswith(".")]
    builtin = sorted(loader.read_extension(p, builtin=True).name for p in folders)
    assert sorted(r[0] for r in rows if r[1]) == builtin
    assert all(r[2] for r in rows)  # nothing disabled in a fresh data dir


def test_app_builds_and_writes_ui_config(runtime):
    from modules.ui import app

    app.build(runtime)
    saved = json.loads(runtime.paths.ui_config_file.read_text())
    for key in ("txt2img/Sampling steps/value", "img2img/Denoising strength/value", "extras/Resize/value"):
        assert key in saved
    assert 'sdwebuiTheme = "dark"' in app.head_html("dark")


def test_the_gallery_shows_extra_images_after_the_results():
    image, depth = Image.new("RGB", (8, 8)), Image.new("L", (8, 8))
    result = GenerationResult([image], [1], [2], ["p"], [""], ["p\nSeed: 1"], {}, extra_images=[depth])
    shown, text, generation = show_result(result)
    assert shown == [image, depth] and generation["infotexts"] == ["p\nSeed: 1"]


def test_a_merged_checkpoint_appears_in_every_checkpoint_list_at_once(runtime):
    from modules.models.loader import save_checkpoint
    from modules.models.tiny import build_tiny_bundle
    from modules.ui import app

    for seed, name in [(0, "a"), (1, "b")]:
        save_checkpoint(build_tiny_bundle(seed=seed), runtime.paths.ckpt_dir / f"{name}.safetensors")
    runtime.models.refresh()
    demo = app.build(runtime)
    (merge_fn,) = [
        f
        for f in demo.fns.values()
        if any(getattr(demo.blocks.get(t[0]), "elem_id", None) == "modelmerger_merge" for t in f.targets)
    ]
    ids = [o.elem_id for o in merge_fn.outputs]
    assert "setting_sd_model_checkpoint" in ids and "txt2img_hr_checkpoint" in ids
    updates = merge_fn.fn(
        "a.safetensors", "b.safetensors", None, "Weighted sum", 0.3, "merged", False, "None"
    )
    for elem_id, update in zip(ids[1:], updates[1:], strict=True):
        assert any(title.startswith("merged.safetensors") for title in update["choices"]), elem_id
    assert updates[ids.index("txt2img_hr_checkpoint")]["choices"][0] == "Use same checkpoint"


def test_model_defaults_replace_only_what_the_user_left():
    from modules.ui import model_defaults

    width = gr.Slider(64, 2048, value=64)
    sampler = gr.Dropdown(["Euler", "DPM++ 2M"], value="DPM++ 2M")
    steps = gr.Slider(1, 150, value=20)
    pairs = [("width", width, 512), ("sampler_name", sampler, "Euler"), ("steps", steps, 20)]
    recommended = {"width": 768, "sampler_name": "Unknown sampler", "steps": 30}
    # The user typed 96 into width; the sampler and steps are still what was last given (64.0 is 64).
    given, out = model_defaults.updates(pairs, recommended, [64, "DPM++ 2M", 20], [96.0, "DPM++ 2M", 20.0])
    assert given == [64, "Euler", 30]  # an unknown sampler falls back to the control's own default
    assert [update.get("value") for update in out] == [None, "Euler", 30]
    # Nothing to change: no value is sent (it would overwrite typing that raced with the page load).
    given, out = model_defaults.updates(pairs, {}, [512, "Euler", 20], [512.0, "Euler", 20])
    assert given == [512, "Euler", 20] and all("value" not in update for update in out)
