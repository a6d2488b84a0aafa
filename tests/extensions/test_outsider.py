"""A sample third-party extension (tests/extensions/outsider_ext), written only against the public API,
loaded through the real loader into a runtime on the tiny model: every hook and callback fires with the
right data, a broken and a raising extension are reported by name, and generation still succeeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from modules import cmd_args
from modules.extensions import loader
from modules.extensions.registry import ExtensionRegistry
from modules.images import read_info_from_image
from modules.processing.job import GenerationJob
from modules.runtime import Runtime

OUTSIDER_DIR = Path(__file__).parent / "outsider_ext"


@pytest.fixture(scope="module")
def extensions():
    return loader.discover(set(), dirs=((OUTSIDER_DIR, False),))


@pytest.fixture(scope="module")
def registry(extensions):
    registry = ExtensionRegistry()
    loader.load_scripts(extensions, registry)
    return registry


@pytest.fixture(scope="module")
def runtime(registry, tmp_path_factory):
    """Loads its model the app's way (the tiny checkpoint written on first run), so model_loaded fires."""
    data = tmp_path_factory.mktemp("outsider-data")
    return Runtime(
        cmd_args.parse(["--data-dir", str(data), "--device", "cpu", "--no-bundled-models"]), registry
    )


def script(registry, title: str):
    return next(s for s in registry.scripts if s.title() == title)


@pytest.fixture
def events(registry):
    recorded = script(registry, "Outsider always").events
    recorded.clear()
    registry.errors.clear()
    return recorded


def of(events, name: str) -> list:
    return [data for event, data in events if event == name]


def job(**kw) -> GenerationJob:
    defaults = dict(
        prompt="a cat <outsider:foo:1>",
        steps=2,
        width=64,
        height=64,
        seed=40,
        sampler_name="Euler",
        alwayson_scripts={"Outsider always": {"args": [True, 0.25]}},
    )
    return GenerationJob(**{**defaults, **kw})


def test_order_follows_metadata_and_failures_are_reported_by_name(extensions, registry):
    names = [e.name for e in extensions]
    assert names.index("outsider") < names.index("aaa-raising")  # After = outsider beats alphabetical order
    assert {s.title() for s in registry.scripts} == {"Outsider always", "Outsider twice", "Raising"}
    assert all(s.name in ("outsider", "aaa-raising") for s in registry.scripts)
    broken = [e for e in registry.errors if e.extension == "broken"]
    assert len(broken) == 1 and broken[0].where == "scripts/broken.py"
    assert "a_module_that_does_not_exist" in broken[0].message


def test_preload_adds_a_flag_and_install_runs_once(extensions, tmp_path, monkeypatch):
    registry = ExtensionRegistry()
    parser = cmd_args.build_parser()
    loader.run_preloads(extensions, parser, registry)
    assert parser.parse_args(["--outsider-flag", "yes"]).outsider_flag == "yes"
    marker, stamps = tmp_path / "marker.txt", tmp_path / "stamps.json"
    monkeypatch.setenv("OUTSIDER_INSTALL_MARKER", str(marker))
    loader.run_installers(extensions, stamps, registry)
    assert marker.read_text() == "installed from outsider\n"
    assert "outsider" in json.loads(stamps.read_text())
    marker.unlink()
    loader.run_installers(extensions, stamps, registry)  # unchanged install.py: not run again
    assert not marker.exists() and not registry.errors


@pytest.mark.slow
def test_every_generation_hook_sees_the_job(runtime, registry, events):
    result = runtime.txt2img(job(n_iter=2))
    shifted = [40 + 1000, 41 + 1000]
    assert result.seeds == shifted and len(result.samples) == 2
    assert of(events, "model_loaded") == [runtime.model().name]
    assert of(events, "process")[0]["seeds"] == [40, 41]
    before = of(events, "before_process_batch")
    assert [b["seeds"] for b in before] == [[shifted[0]], [shifted[1]]]
    assert before[0]["prompts"] == ["a cat <outsider:foo:1>, outsider"]  # tags still in the text here
    assert of(events, "process_batch")[0]["prompts"] == ["a cat , outsider"]  # ... and taken out here
    assert of(events, "network_activate") == [[("foo", "1")], [("foo", "1")]]
    assert len(of(events, "network_deactivate")) == 1
    assert of(events, "post_sample") == [
        {"batch": 0, "shape": (1, 4, 8, 8)},
        {"batch": 1, "shape": (1, 4, 8, 8)},
    ]
    assert [e["count"] for e in of(events, "postprocess_batch")] == [1, 1]
    assert [e["index"] for e in of(events, "postprocess_image")] == [0, 1]
    assert of(events, "postprocess")[0]["seeds"] == shifted
    steps = of(events, "cfg_denoiser")
    assert [s["call"] for s in steps] == [0, 1, 0, 1] and all(s["total"] == 2 for s in steps)
    assert steps[0]["sigma"] > steps[1]["sigma"] > 0 and steps[0]["shape"][-2:] == (8, 8)
    assert steps[0]["conds"] == 1 and steps[0]["uncond_shape"][-1] == 32  # tiny text encoder width
    assert [a["call"] for a in of(events, "after_cfg")] == [0, 1, 0, 1]
    text = result.infotexts[-1]
    assert "Outsider: True" in text and "Outsider strength: 0.25" in text and "Outsider network: foo" in text
    # The raising extension failed in its hook and callbacks; it was reported and the job finished.
    where = {(e.extension, e.where) for e in registry.errors}
    assert ("aaa-raising", "Raising.process_batch") in where
    assert ("aaa-raising", "callback cfg_denoiser") in where


@pytest.mark.slow
def test_images_changed_by_postprocess_image_and_saving_callbacks(runtime, events):
    result = runtime.txt2img(job())
    saved = of(events, "image_saved")
    assert of(events, "before_image_saved") == [{"mode": "txt2img", "filename": ""}]
    assert len(saved) == 1 and Path(saved[0]["filename"]).is_file()
    text, _ = read_info_from_image(Image.open(saved[0]["filename"]))
    assert text.endswith(", Saved by: outsider") and saved[0]["infotext"] == text
    # Same prompt and seed without the script: the script's image is exactly its inversion.
    plain = runtime.txt2img(
        job(
            prompt="a cat <outsider:foo:1>, outsider",
            seed=1040,
            alwayson_scripts={},
            do_not_save_samples=True,
        )
    )
    inverted = ImageOps.invert(plain.images[0].convert("RGB"))
    assert np.array_equal(np.asarray(inverted), np.asarray(result.images[0]))


@pytest.mark.slow
def test_hires_fix_calls_before_hr(runtime, events):
    runtime.txt2img(job(enable_hr=True, hr_scale=1.5, do_not_save_samples=True))
    assert of(events, "before_hr") == [{"width": 64}]


@pytest.mark.slow
def test_selectable_script_runs_the_job_its_way(runtime, events):
    result = runtime.txt2img(
        job(
            script_name="Outsider twice",
            script_args=[" at night"],
            alwayson_scripts={},
            do_not_save_samples=True,
        )
    )
    assert result.seeds == [40, 41] and len(result.images) == 2
    assert of(events, "run") == [{"seeds": [40, 41]}]
    assert result.prompts[0] == "a cat <outsider:foo:1> at night"


def test_ui_settings_tabs_app_started_and_infotext_pasted(runtime, registry, events):
    components = script(registry, "Outsider always").ui(False)
    assert [c.label for c in components] == ["Outsider enabled", "Outsider strength"]
    registry.call("ui_settings", runtime.options)
    assert runtime.options.get("outsider_option") == 3
    assert runtime.options.definitions["outsider_option"].section == "Outsider"
    registry.call("app_started", "demo", "app")
    assert registry.call("ui_tabs")[0] == []
    params = {"Outsider strength": "0.25"}
    registry.call("infotext_pasted", "a cat\nSteps: 2, Outsider strength: 0.25", params)
    assert params == {"Outsider strength": 0.25}
    assert [e for e, _ in events] == ["ui_settings", "app_started", "ui_tabs", "infotext_pasted"]
