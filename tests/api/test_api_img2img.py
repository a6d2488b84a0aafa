"""POST /sdapi/v1/img2img: base64 init images and masks in, A1111's API defaults, errors naming fields."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tests.api.helpers import b64_png, decode, gradient

URL = "/sdapi/v1/img2img"


def request(**fields):
    return {
        "init_images": [b64_png(gradient(), data_url=True)],
        "prompt": "a green triangle",
        "steps": 4,
        "width": 64,
        "height": 64,
        "seed": 3,
        "denoising_strength": 0.6,
        **fields,
    }


def half_mask(width: int = 64, height: int = 64) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (0, 0, width // 2, height))
    return mask


def test_img2img_returns_an_image_and_hides_init_images_in_the_echo(client):
    response = client.post(URL, json=request())
    assert response.status_code == 200, response.text
    body = response.json()
    assert decode(body["images"][0]).size == (64, 64)
    assert body["parameters"]["init_images"] is None and body["parameters"]["mask"] is None
    assert "Denoising strength: 0.6" in json.loads(body["info"])["infotexts"][0]
    with_images = client.post(URL, json=request(include_init_images=True)).json()
    assert with_images["parameters"]["init_images"] == request()["init_images"]
    assert "include_init_images" not in with_images["parameters"]


def test_inpainting_with_a_mask_keeps_the_unmasked_half(client):
    original = gradient()
    body = client.post(
        URL,
        json=request(
            init_images=[b64_png(original)],
            mask=b64_png(half_mask()),
            denoising_strength=1.0,
            mask_blur=0,
            inpainting_fill=1,
            inpaint_full_res=False,
        ),
    ).json()
    result = np.asarray(decode(body["images"][0]).convert("RGB"), dtype=np.int16)
    source = np.asarray(original, dtype=np.int16)
    kept = np.abs(result[:, 40:] - source[:, 40:]).max()
    changed = np.abs(result[:, :24] - source[:, :24]).mean()
    assert kept <= 2  # pasted back over the original outside the mask
    assert changed > 10  # repainted inside it


def test_api_inpaint_defaults_are_a1111s_api_defaults(client, runtime):
    seen = []
    original = runtime.submit_job

    def spy(mode, job, **kwargs):
        seen.append((mode, job))
        return original(mode, job)

    runtime.submit_job = spy
    client.post(URL, json=request(mask=b64_png(half_mask())))
    mode, job = seen[0]
    assert mode == "img2img"
    # A1111's API (not its UI): fill, only masked, no padding, blur 4.
    assert (job.inpainting_fill, job.inpaint_full_res, job.inpaint_full_res_padding) == (0, True, 0)
    assert job.mask_blur == 4 and job.mask.size == (64, 64)


def test_missing_empty_and_undecodable_images(client, runtime):
    assert client.post(URL, json={"prompt": "x"}).status_code == 404
    response = client.post(URL, json=request(init_images=[]))
    assert response.status_code == 422 and "init_images" in response.json()["detail"]
    response = client.post(URL, json=request(init_images=["not base64 at all!"]))
    assert response.status_code == 400 and "init_images[0]" in response.json()["detail"]
    response = client.post(URL, json=request(mask="aGVsbG8="))  # valid base64, not an image
    assert response.status_code == 400 and response.json()["detail"].startswith("mask:")
    response = client.post(URL, json=request(init_images=["http://example.com/a.png"]))
    assert response.status_code == 400
    assert not runtime.queue.running() and not runtime.queue.waiting()


def test_latent_mask_is_read_as_an_image(client):
    fields = dict(mask=b64_png(half_mask()), mask_blur=0, inpaint_full_res=False)
    bad = client.post(URL, json=request(latent_mask="not an image", **fields))
    assert bad.status_code == 400 and "latent_mask" in bad.text  # as for a bad mask
    good = client.post(URL, json=request(latent_mask=b64_png(half_mask()), **fields))
    assert good.status_code == 200, good.text


def test_a_depth_models_map_comes_after_the_images(client, runtime, monkeypatch):
    import torch

    from modules.models.tiny import build_tiny_bundle
    from modules.processing import depth

    runtime.model_loader = lambda bundle=build_tiny_bundle(unet_in_channels=5): bundle
    monkeypatch.setattr(depth, "depth_map", lambda rt, job, images: torch.rand(len(images), 1, 64, 64))
    body = client.post(URL, json=request(batch_size=2, steps=2)).json()
    info = json.loads(body["info"])
    assert len(body["images"]) == 3 and len(info["infotexts"]) == 2 == len(info["all_seeds"])
    assert decode(body["images"][2]).mode == "L"  # A1111's images + extra_images
