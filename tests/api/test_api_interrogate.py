"""POST /sdapi/v1/interrogate: A1111's fields and answers, through the app and through a live server."""

from __future__ import annotations

import shutil

import pytest
import requests
from PIL import Image

from tests.api.helpers import b64_png, start_live_server, stop
from tests.interrogate.helpers import write_tiny_clip


def picture() -> Image.Image:
    image = Image.new("RGB", (64, 64), (40, 70, 220))
    image.paste((220, 40, 40), (16, 16, 48, 48))
    return image


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_interrogate_answers_a_caption(client, runtime, tiny_clip):
    shutil.copytree(tiny_clip, runtime.paths.clip_dir / "tiny-clip")
    response = client.post("/sdapi/v1/interrogate", json={"image": b64_png(picture(), data_url=True)})
    assert response.status_code == 200, response.text
    caption = response.json()["caption"]
    assert caption == runtime.interrogate(picture())
    assert len(caption.split(", ")) == 6  # mediums, artists, movements, 3 flavours (no BLIP here)


def test_interrogate_refuses_unknown_model_and_bad_image(client):
    response = client.post(
        "/sdapi/v1/interrogate", json={"image": b64_png(picture()), "model": "deepdanbooru"}
    )
    assert response.status_code == 404 and "model: 'deepdanbooru' not found" in response.json()["detail"]
    response = client.post("/sdapi/v1/interrogate", json={"image": "bm90IGFuIGltYWdl"})
    assert response.status_code == 400 and response.json()["detail"].startswith("image:")
    response = client.post("/sdapi/v1/interrogate", json={})
    assert response.status_code == 400 and response.json()["detail"] == "image: no image given"


def test_interrogate_without_a_clip_names_the_folder(client, runtime):
    response = client.post("/sdapi/v1/interrogate", json={"image": b64_png(picture())})
    assert response.status_code == 503
    assert str(runtime.paths.clip_dir) in response.json()["detail"]


@pytest.mark.slow
def test_interrogate_on_a_live_server(tmp_path, free_port, tiny_clip):
    shutil.copytree(tiny_clip, tmp_path / "models" / "CLIP" / "tiny-clip")
    proc = start_live_server(["--nowebui", "--no-bundled-models"], tmp_path, free_port)
    try:
        url = f"http://127.0.0.1:{free_port}/sdapi/v1/interrogate"
        response = requests.post(url, json={"image": b64_png(picture()), "model": "clip"}, timeout=120)
        assert response.status_code == 200, response.text
        parts = response.json()["caption"].split(", ")
        assert len(parts) == 6 and all(parts)
        assert list((tmp_path / "cache" / "interrogate").glob("*.safetensors")), "features cached"
    finally:
        stop(proc)
