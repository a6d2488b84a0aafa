"""The real ``webuiapi`` client (PyPI) against live servers started as users start them:
``python webui.py --api`` (API beside the Gradio UI) and ``--nowebui --api-auth`` (API alone, with auth)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import webuiapi
from PIL import Image

from tests.api.helpers import gradient, start_live_server, stop

pytestmark = pytest.mark.slow

SMALL = {"steps": 2, "width": 64, "height": 64, "seed": 3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[webuiapi.WebUIApi]:
    port = free_port()
    proc = start_live_server(["--api", "--no-bundled-models"], tmp_path_factory.mktemp("data"), port)
    try:
        yield webuiapi.WebUIApi(port=port, sampler="Euler a", steps=2)
    finally:
        stop(proc)


def test_txt2img_and_png_info(api):
    result = api.txt2img(prompt="a red circle", negative_prompt="blue", **SMALL)
    assert result.image.size == (64, 64)
    assert result.info["seed"] == 3 and result.info["prompt"] == "a red circle"
    assert result.parameters["sampler_name"] == "Euler a"
    png = api.png_info(result.image)
    assert "Seed: 3" in png.info and "Sampler: Euler a" in png.info
    assert png.json["parameters"]["Negative prompt"] == "blue"


def test_batch_result_image_is_the_first_picture_not_a_grid(api):
    result = api.txt2img(prompt="a red circle", batch_size=2, **SMALL)
    assert len(result.images) == 2 and result.image.size == (64, 64)
    assert result.info["index_of_first_image"] == 0


def test_img2img_with_mask(api):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    result = api.img2img(
        images=[gradient()], mask_image=mask, prompt="a green dot", denoising_strength=0.8, **SMALL
    )
    assert result.image.size == (64, 64)
    assert "Denoising strength: 0.8" in result.info["infotexts"][0]


def test_extras_upscale(api):
    result = api.extra_single_image(
        gradient(32, 32), upscaler_1=webuiapi.Upscaler.Lanczos, upscaling_resize=2
    )
    assert result.image.size == (64, 64)
    assert "Postprocess upscaler: Lanczos" in result.info


def test_options_and_lists(api):
    assert api.get_options()["samples_format"] == "png"
    api.set_options({"eta_noise_seed_delta": 31337})
    assert api.get_options()["eta_noise_seed_delta"] == 31337
    assert "Euler a" in api.util_get_sampler_names()
    assert "Karras" in [s["label"] for s in api.get_schedulers()]
    titles = api.util_get_model_names()
    assert len(titles) == 1 and titles[0].startswith("tiny-random-sd1.safetensors")
    assert api.util_get_current_model() == titles[0]
    api.util_set_model(titles[0])
    assert api.get_options()["sd_model_checkpoint"] == titles[0]
    assert [u["name"] for u in api.get_upscalers()][:3] == ["None", "Lanczos", "Nearest"]
    assert set(api.get_scripts()) == {"txt2img", "img2img"}
    assert api.get_memory()["ram"]["total"] > 0
    assert api.get_cmd_flags()["api"] is True
    api.refresh_checkpoints()


def test_progress_while_a_long_job_runs_and_interrupt(api):
    results = []
    worker = threading.Thread(
        target=lambda: results.append(api.txt2img(prompt="slow", **{**SMALL, "steps": 1000}))
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        progress = api.get_progress()
        # job_count is 0 between jobs; sampling_step still shows the last job's
        while not (progress["state"]["job_count"] and progress["state"]["sampling_step"] >= 2):
            assert worker.is_alive() and time.monotonic() < deadline
            time.sleep(0.1)
            progress = api.get_progress()
        assert progress["state"]["job_count"] == 1 and progress["state"]["sampling_steps"] == 1000
        assert 0 < progress["progress"] < 1 and progress["eta_relative"] > 0
    finally:
        api.interrupt()
        worker.join(timeout=60)
    assert results and results[0].image.size == (64, 64)
    api.util_wait_for_ready(check_interval=0.1)  # returns once progress is 0 and job_count 0


def test_api_alone_with_auth(tmp_path):
    port = free_port()
    proc = start_live_server(["--nowebui", "--api-auth", "user:pa:ss"], tmp_path, port)
    try:
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/sdapi/v1/progress", timeout=10).status_code == 401
        assert requests.get(f"{base}/sdapi/v1/progress", auth=("user", "nope"), timeout=10).status_code == 401
        assert requests.get(f"{base}/", timeout=10).status_code == 404  # no UI
        denied = webuiapi.WebUIApi(port=port, username="user", password="wrong")
        with pytest.raises(RuntimeError, match="401"):
            denied.txt2img(prompt="x", **SMALL)
        client = webuiapi.WebUIApi(port=port, username="user", password="pa:ss")
        assert client.txt2img(prompt="a square", **SMALL).image.size == (64, 64)
    finally:
        stop(proc)
