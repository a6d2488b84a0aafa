"""Nothing a client sends makes the server write outside its folders or replace a file."""

from __future__ import annotations

import os
import stat

import pytest
from PIL import Image

from modules import images, output_paths

TINY = {"prompt": "a circle", "steps": 1, "width": 64, "height": 64, "save_images": True}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("samples_filename_pattern", "../../escaped-[seed]"),
        ("samples_filename_pattern", "/tmp/escaped-[seed]"),
        ("samples_filename_pattern", "a\\..\\b"),
        ("samples_filename_pattern", "x\x00y"),
        ("directories_filename_pattern", "../[date]"),
    ],
)
def test_options_refuse_paths_that_escape(client, runtime, setting, value):
    before = runtime.options.get(setting)
    response = client.post("/sdapi/v1/options", json={setting: value})
    assert response.status_code in (400, 422)
    assert setting in response.text
    assert runtime.options.get(setting) == before


@pytest.mark.parametrize("value", ["/tmp/elsewhere", "../../elsewhere"])
def test_output_folders_are_not_the_clients_to_choose(client, runtime, value):
    # As A1111's restrict_api: the API ignores outdir_* settings; elsewhere they must stay inside outputs.
    assert client.post("/sdapi/v1/options", json={"outdir_txt2img_samples": value}).status_code == 200
    assert runtime.options.get("outdir_txt2img_samples") == ""
    with pytest.raises(ValueError, match="outdir_txt2img_samples.*inside the outputs folder"):
        runtime.options.update({"outdir_txt2img_samples": value})


def test_override_settings_refuse_an_escaping_pattern(client, runtime, tmp_path):
    body = {**TINY, "override_settings": {"samples_filename_pattern": "../../../escaped"}}
    response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 422 and "samples_filename_pattern" in response.text
    assert not list(tmp_path.parent.rglob("escaped*"))


def test_output_folder_inside_outputs_is_used(client, runtime):
    runtime.options.update({"outdir_txt2img_samples": "mine"})  # the Settings tab's path
    response = client.post("/sdapi/v1/txt2img", json=TINY)
    assert response.status_code == 200
    saved = list((runtime.paths.outputs_dir / "mine").rglob("*.png"))
    assert len(saved) == 1


def test_pattern_text_never_makes_a_path(tmp_path):
    # A pattern that reached save_image unchecked (an extension, an old config) still names a file.
    path = images.save_image(Image.new("RGB", (8, 8)), tmp_path / "out", pattern="../../x/[seed]")
    assert path.parent == (tmp_path / "out").resolve() or path.parent == tmp_path / "out"
    assert not (tmp_path / "x").exists()


def test_sidecar_text_never_replaces_a_file(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "shot.txt").write_text("precious")
    image = Image.new("RGB", (8, 8))
    path = images.save_image(
        image, folder, extension="jpg", forced_filename="shot", infotext="p", save_txt=True
    )
    assert (folder / "shot.txt").read_text() == "precious"
    assert path.name == "shot-1.jpg" and path.with_suffix(".txt").read_text() == "p"


def test_files_get_the_users_umask(tmp_path):
    path = images.save_image(Image.new("RGB", (8, 8)), tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == output_paths.FILE_MODE == 0o666 & ~output_paths.UMASK


def test_inside_refuses_symlinked_escapes(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(output_paths.OutputPathError):
        output_paths.inside(tmp_path / "out", tmp_path / "out" / "link" / "x.png")
