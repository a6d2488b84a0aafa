"""/png-info and the extras upscale endpoints: A1111's size arithmetic, info text and errors."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.api.helpers import b64_png, decode, gradient

API = "/sdapi/v1"
PARAMS = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512"


def test_png_info_reads_and_parses_the_parameters(client):
    image = b64_png(gradient(8, 8), {"parameters": PARAMS, "Software": "test"}, data_url=True)
    body = client.post(f"{API}/png-info", json={"image": image}).json()
    assert body["info"] == PARAMS
    assert body["items"] == {"Software": "test"}
    assert body["parameters"]["Prompt"] == "a cat" and body["parameters"]["Seed"] == "42"
    assert body["parameters"]["Size-1"] == "512"


def test_png_info_lets_extensions_parse_their_keys(client, runtime):
    def add_key(text: str, parameters: dict) -> None:
        parameters["From extension"] = text.count("Seed")

    runtime.extensions.add_callback("infotext_pasted", add_key)
    body = client.post(
        f"{API}/png-info", json={"image": b64_png(gradient(8, 8), {"parameters": PARAMS})}
    ).json()
    assert body["parameters"]["From extension"] == 1


def test_png_info_of_no_image_and_of_a_plain_image(client):
    assert client.post(f"{API}/png-info", json={"image": " "}).json() == {
        "info": "",
        "items": {},
        "parameters": {},
    }
    body = client.post(f"{API}/png-info", json={"image": b64_png(gradient(8, 8))}).json()
    assert body["info"] == "" and body["items"] == {}
    response = client.post(f"{API}/png-info", json={"image": "%%%"})
    assert response.status_code == 400 and response.json()["detail"].startswith("image:")


def extras(client, image: Image.Image, **fields):
    return client.post(f"{API}/extra-single-image", json={"image": b64_png(image), **fields})


def test_scale_by_rounds_the_size_down_to_a_multiple_of_8(client):
    body = extras(client, gradient(50, 30), upscaler_1="Lanczos", upscaling_resize=1.5).json()
    assert decode(body["image"]).size == (72, 40)  # 75x45 -> multiples of 8
    assert body["html_info"] == "<p>Postprocess upscale by: 1.5, Postprocess upscaler: Lanczos</p>"


def test_lanczos_and_nearest_differ_and_nearest_repeats_pixels(client):
    source = gradient(16, 16)
    nearest = np.asarray(decode(extras(client, source, upscaler_1="Nearest").json()["image"]))
    lanczos = np.asarray(decode(extras(client, source, upscaler_1="Lanczos").json()["image"]))
    assert nearest.shape == lanczos.shape == (32, 32, 3)
    assert np.array_equal(nearest[::2, ::2], np.asarray(source))
    assert not np.array_equal(nearest, lanczos)


def test_scale_to_with_and_without_crop(client):
    source = gradient(40, 20)
    fields = {"upscaler_1": "Lanczos", "resize_mode": 1, "upscaling_resize_w": 64, "upscaling_resize_h": 64}
    cropped = extras(client, source, **fields).json()
    assert decode(cropped["image"]).size == (64, 64)
    assert (
        "Postprocess upscale to: 64x64" in cropped["html_info"]
        and "Postprocess crop to: 64x64" in cropped["html_info"]
    )
    whole = extras(client, source, upscaling_crop=False, **fields).json()
    assert decode(whole["image"]).size == (128, 64)  # scale 3.2 keeps the aspect ratio


def test_second_upscaler_blends_and_none_leaves_the_image(client):
    source = gradient(16, 16)
    only_first = np.asarray(decode(extras(client, source, upscaler_1="Lanczos").json()["image"]), dtype=float)
    only_second = np.asarray(
        decode(extras(client, source, upscaler_1="Nearest").json()["image"]), dtype=float
    )
    blended = extras(
        client, source, upscaler_1="Lanczos", upscaler_2="Nearest", extras_upscaler_2_visibility=0.5
    )
    mixed = np.asarray(decode(blended.json()["image"]), dtype=float)
    assert np.abs(mixed - (only_first + only_second) / 2).max() <= 1
    assert "Postprocess upscaler 2: Nearest" in blended.json()["html_info"]
    unchanged = extras(client, source).json()
    assert np.array_equal(np.asarray(decode(unchanged["image"])), np.asarray(source))
    assert unchanged["html_info"] == "<p></p>"


def test_extras_keep_the_parameters_and_add_postprocessing(client):
    source = b64_png(gradient(16, 16), {"parameters": PARAMS})
    body = client.post(f"{API}/extra-single-image", json={"image": source, "upscaler_1": "Lanczos"}).json()
    info = decode(body["image"]).info
    assert info["parameters"] == PARAMS
    # The default scale is the integer 2 in A1111 too, so it is written "2".
    assert info["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: Lanczos"


def test_batch_images(client):
    image_list = [
        {"data": b64_png(gradient(16, 8)), "name": "a"},
        {"data": b64_png(gradient(8, 8)), "name": "b"},
    ]
    body = client.post(
        f"{API}/extra-batch-images",
        json={"imageList": image_list, "upscaler_1": "Nearest", "upscaling_resize": 3},
    ).json()
    assert [decode(data).size for data in body["images"]] == [(48, 24), (24, 24)]


def test_extras_errors_name_the_field(client, runtime):
    response = extras(client, gradient(8, 8), upscaler_1="R-ESRGAN 4x+")
    assert response.status_code == 404 and response.json()["detail"].startswith("upscaler_1:")
    response = extras(client, gradient(8, 8), upscaler_1="Lanczos", upscaling_resize=0.1)
    assert response.status_code == 422 and "upscaling_resize" in response.json()["detail"]
    response = extras(client, gradient(8, 8), resize_mode=2)
    assert response.status_code == 422
    response = client.post(f"{API}/extra-batch-images", json={"imageList": [{"data": "!!", "name": "x"}]})
    assert response.status_code == 400 and response.json()["detail"].startswith("imageList[0]:")
    assert not runtime.queue.running() and not runtime.queue.waiting()
