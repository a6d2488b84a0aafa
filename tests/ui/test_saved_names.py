"""Files the UI writes (Save, Zip, Extras) are named as generated images are, and get the user's umask."""

from __future__ import annotations

import os
import re
import stat

import pytest
from PIL import Image

from modules import cmd_args, images, output_paths
from modules.runtime import Runtime
from modules.ui import extras, results

TEXT = (
    "a red circle\nNegative prompt: blurry\n"
    "Steps: 3, Sampler: Euler a, Schedule type: Karras, CFG scale: 7.0, Seed: 42, Size: 64x96, "
    "Model hash: da9930895c, Model: demo-shapes-sd1"
)


@pytest.fixture
def runtime(tmp_path):
    return Runtime(cmd_args.parse(["--data-dir", str(tmp_path / "data"), "--device", "cpu"]))


def gallery(tmp_path, count: int = 1) -> list[tuple[str, None]]:
    paths = []
    for i in range(count):
        path = tmp_path / f"shown-{i}.png"
        Image.new("RGB", (64, 96), (200, 10 * i, 0)).save(path)
        paths.append((str(path), None))
    return paths


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_save_names_files_by_the_images_pattern(runtime, tmp_path):
    shown = gallery(tmp_path)
    _, log = results.save_files(runtime, shown, {"infotexts": [TEXT]}, 0, False)
    folder = runtime.paths.outputs_dir / "save"
    saved = sorted(p.name for p in folder.glob("*.png"))
    assert saved == ["00000-42-a red circle.png"], saved  # A1111's default "[seed]-[prompt_spaces]"
    assert "Saved: 00000-42-a red circle.png" in log
    path = folder / saved[0]
    assert mode(path) == output_paths.FILE_MODE == 0o666 & ~output_paths.UMASK
    assert mode(folder / "log.csv") == output_paths.FILE_MODE
    with Image.open(path) as image:
        assert image.info["parameters"] == TEXT


def test_save_follows_the_pattern_and_number_settings(runtime, tmp_path):
    runtime.options.set("samples_filename_pattern", "[model_name]-[steps]-[cfg]-[width]x[height]-[sampler]")
    runtime.options.set("save_images_add_number", False)
    results.save_files(runtime, gallery(tmp_path), {"infotexts": [TEXT]}, 0, False)
    names = [p.name for p in (runtime.paths.outputs_dir / "save").glob("*.png")]
    assert names == ["demo-shapes-sd1-3-7.0-64x96-Euler a.png"]


def test_zip_holds_the_named_files(runtime, tmp_path):
    import zipfile

    download, _ = results.save_files(runtime, gallery(tmp_path, 2), {"infotexts": [TEXT, TEXT]}, -1, True)
    (archive,) = download["value"]
    assert mode(archive) == output_paths.FILE_MODE
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["00000-42-a red circle.png", "00001-42-a red circle.png"]


def test_extras_names_its_output_from_the_sources_parameters(runtime, tmp_path):
    source = images.save_image(Image.new("RGB", (16, 16)), tmp_path, forced_filename="in", infotext=TEXT)
    settings = extras.settings_for(extras.SCALE_BY, 2, 0, 0, False, "Lanczos")
    extras.run(runtime, str(source), settings)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (16, 16)).save(plain)  # no parameters text: a number alone, never "00000--.png"
    _, html = extras.run(runtime, str(plain), settings)
    folder = runtime.paths.outputs_dir / "extras-images"
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == ["00000-42-a red circle.png", "00001.png"], names
    assert "Saved: 00001.png" in html
    assert all(mode(folder / name) == output_paths.FILE_MODE for name in names)


def test_name_fields_survive_a_text_without_numbers():
    fields = results.name_fields({"Prompt": "x", "Seed": "not a number"}, Image.new("RGB", (8, 4)))
    assert (fields.seed, fields.prompt, fields.width, fields.height) == (None, "x", 8, 4)
    assert re.fullmatch("-x", images.apply_pattern(images.DEFAULT_PATTERN, fields))
