"""POST /sdapi/v1/txt2img through FastAPI's TestClient on the tiny model: request defaults and fields as
A1111 1.10 has them, the response shape, errors naming the field, and the queue always released."""

from __future__ import annotations

import json

from modules.images import read_info_from_image
from tests.api.helpers import decode

URL = "/sdapi/v1/txt2img"
SMALL = {"prompt": "a red circle", "steps": 2, "width": 64, "height": 64, "seed": 7}


def post(client, **fields):
    return client.post(URL, json={**SMALL, **fields})


def test_response_has_images_echoed_parameters_and_info_json(client):
    response = post(client, negative_prompt="blurry")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"images", "parameters", "info"}
    image = decode(body["images"][0])
    assert image.size == (64, 64)
    info = json.loads(body["info"])
    assert info["seed"] == 7 and info["all_seeds"] == [7]
    assert info["prompt"] == "a red circle" and info["negative_prompt"] == "blurry"
    assert info["index_of_first_image"] == 0
    assert info["version"] and f"Version: {info['version']}" in info["infotexts"][0]
    # The PNG carries its infotext as A1111's API returns it.
    text, _ = read_info_from_image(image)
    assert text == info["infotexts"][0] and "Seed: 7" in text
    # The echo is the whole request with A1111's defaults filled in.
    assert body["parameters"]["prompt"] == "a red circle"
    assert body["parameters"]["sampler_index"] == "Euler"
    assert body["parameters"]["enable_hr"] is False
    assert body["parameters"]["send_images"] is True


def test_a1111_defaults_euler_from_sampler_index_and_50_steps(client, runtime):
    seen = []
    original = runtime.submit_job

    def spy(mode, job, **kwargs):
        seen.append(job)
        return original(mode, job.__class__(**{**job.__dict__, "steps": 1}), **kwargs)

    runtime.submit_job = spy
    response = client.post(URL, json={"width": 64, "height": 64})
    assert response.status_code == 200, response.text
    job = seen[0]
    assert (job.sampler_name, job.scheduler, job.steps, job.cfg_scale) == ("Euler", "Automatic", 50, 7.0)
    assert job.do_not_save_samples  # the API saves only with save_images
    assert job.seed_resize_from_w == 0 and job.seed_resize_from_h == 0  # A1111's -1 = not set


def test_sampler_names_aliases_and_combined_schedule(client):
    for name, expected_sampler in (("k_euler_a", "Euler a"), ("DPM++ 2M Karras", "DPM++ 2M")):
        info = json.loads(post(client, sampler_name=name).json()["info"])
        assert f"Sampler: {expected_sampler}," in info["infotexts"][0]
    # An explicit schedule type that is the sampler's default is reported as Automatic, as A1111 does.
    response = post(client, sampler_name="Euler", scheduler="karras")
    assert response.status_code == 200
    assert "Schedule type: Karras" in json.loads(response.json()["info"])["infotexts"][0]


def test_batch_returns_only_its_images_when_not_saving(client):
    # A1111: save_images false (the default) means do_not_save_grid, and then no grid is made at all.
    body = post(client, batch_size=2, n_iter=2).json()
    info = json.loads(body["info"])
    assert len(body["images"]) == 4 and info["index_of_first_image"] == 0
    assert len(info["infotexts"]) == 4 and info["all_seeds"] == [7, 8, 9, 10]
    assert all(decode(data).size == (64, 64) for data in body["images"])


def test_saving_batch_returns_grid_first_then_images(client):
    body = post(client, batch_size=2, n_iter=2, save_images=True).json()
    info = json.loads(body["info"])
    assert len(body["images"]) == 5
    assert info["index_of_first_image"] == 1
    assert len(info["infotexts"]) == 5 and info["all_seeds"] == [7, 8, 9, 10]
    grid = decode(body["images"][0])
    assert grid.size == (128, 128)
    assert all(decode(data).size == (64, 64) for data in body["images"][1:])


def test_grid_is_left_out_when_return_grid_is_off(client, runtime):
    runtime.options.set("return_grid", False)
    body = post(client, batch_size=2, save_images=True).json()
    assert len(body["images"]) == 2
    assert json.loads(body["info"])["index_of_first_image"] == 0


def test_send_images_false_and_save_images_true(client, runtime):
    body = post(client, send_images=False, save_images=True).json()
    assert body["images"] == []
    saved = list((runtime.paths.outputs_dir / "txt2img-images").rglob("*.png"))
    assert len(saved) == 1


def test_output_in_jpeg_when_that_is_the_file_format(client, runtime):
    runtime.options.set("samples_format", "jpg")
    image = decode(post(client).json()["images"][0])
    assert image.format == "JPEG"
    text, _ = read_info_from_image(image)
    assert "Seed: 7" in text


def test_infotext_fills_fields_the_request_did_not_set(client):
    infotext = (
        "a blue square\nNegative prompt: ugly\n"
        "Steps: 3, Sampler: Euler a, CFG scale: 5, Seed: 99, Size: 64x64, Clip skip: 2"
    )
    response = client.post(URL, json={"infotext": infotext, "seed": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    info = json.loads(body["info"])
    assert info["prompt"] == "a blue square" and info["negative_prompt"] == "ugly"
    assert info["seed"] == 5  # set in the request, so the infotext does not override it
    text = info["infotexts"][0]
    assert "Steps: 3," in text and "Sampler: Euler a," in text and "Clip skip: 2" in text
    assert body["parameters"]["override_settings"]["CLIP_stop_at_last_layers"] == 2


def test_override_settings_apply_to_the_request_only(client, runtime):
    response = post(client, override_settings={"CLIP_stop_at_last_layers": 2})
    assert "Clip skip: 2" in json.loads(response.json()["info"])["infotexts"][0]
    assert runtime.options.get("CLIP_stop_at_last_layers") == 1


def test_override_settings_kept_when_not_restored_afterwards(client, runtime):
    post(
        client, override_settings={"eta_noise_seed_delta": 31337}, override_settings_restore_afterwards=False
    )
    assert runtime.options.get("eta_noise_seed_delta") == 31337


def test_nulls_mean_defaults_and_unknown_fields_are_ignored(client):
    response = post(
        client,
        script_name=None,
        hr_sampler_name=None,
        styles=None,
        override_settings=None,
        not_an_a1111_field=3,
    )
    assert response.status_code == 200, response.text
    assert "not_an_a1111_field" not in response.json()["parameters"]


def test_unknown_sampler_is_404_naming_the_field(client, runtime):
    response = post(client, sampler_name="Euler b")
    assert response.status_code == 404
    assert "sampler_name" in response.json()["detail"] and "Euler b" in response.json()["detail"]
    assert post(client, hr_sampler_name="nope", enable_hr=True).status_code == 404
    assert post(client, hr_scheduler="nope", enable_hr=True).status_code == 404
    assert post(client, hr_checkpoint_name="nope", enable_hr=True).status_code == 404
    response = post(client, scheduler="Karras2")
    assert response.status_code == 404 and response.json()["detail"].startswith("scheduler:")
    assert not runtime.queue.running() and not runtime.queue.waiting()


def test_invalid_values_are_422_naming_the_field(client):
    cases = [({"width": 100000}, "width"), ({"steps": 0}, "steps"), ({"batch_size": 0}, "batch_size")]
    for fields, name in cases:
        response = post(client, **fields)
        assert response.status_code == 422, fields
        assert name in json.dumps(response.json()["detail"])
    response = post(client, seed=2**70)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "seed"
    response = post(client, steps="many")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "steps"


def test_unknown_settings_and_checkpoints_in_overrides_are_rejected(client):
    response = post(client, override_settings={"no_such_setting": 1})
    assert response.status_code == 422 and "no_such_setting" in response.json()["detail"]
    response = post(client, override_settings={"sd_model_checkpoint": "missing.safetensors"})
    assert response.status_code == 404 and "missing.safetensors" in response.json()["detail"]
    response = post(client, override_settings={"CLIP_stop_at_last_layers": "two"})
    assert response.status_code == 422 and "CLIP_stop_at_last_layers" in response.json()["detail"]


def test_failure_inside_generation_is_json_500_and_releases_the_queue(client, runtime):
    def broken():
        raise RuntimeError("model exploded")

    runtime.model_loader = broken
    response = post(client)
    assert response.status_code == 500
    assert response.json()["error"] == "RuntimeError" and "model exploded" in response.json()["errors"]
    assert not runtime.queue.running() and not runtime.queue.waiting()
    assert not runtime.progress.report().active


def test_styles_are_applied_to_the_prompts(client, runtime):
    runtime.paths.styles_file.write_text("name,prompt,negative_prompt\nfancy,{prompt} in gold,dull\n")
    runtime.styles.load()
    info = json.loads(post(client, styles=["fancy"], negative_prompt="blurry").json()["info"])
    assert info["prompt"] == "a red circle in gold"
    assert info["negative_prompt"] == "blurry, dull"


def test_hires_fix_fields_reach_the_job(client):
    response = post(
        client,
        enable_hr=True,
        hr_scale=2,
        hr_second_pass_steps=1,
        denoising_strength=0.5,
        hr_upscaler="Latent",
        hr_sampler_name="Use same sampler",  # the UI's choice, sent by some clients
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert decode(body["images"][0]).size == (128, 128)
    assert "Hires upscale: 2" in json.loads(body["info"])["infotexts"][0]


def test_prompt_comments_are_stripped_from_requests(client):
    response = post(client, prompt="a red circle # <lora:hidden:1> note", negative_prompt="# none\nblurry")
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    assert info["all_prompts"] == ["a red circle \n"]
    assert info["all_negative_prompts"] == ["\nblurry"]
    assert "#" not in info["infotexts"][0] and "hidden" not in info["infotexts"][0]
    off = post(client, prompt="a red # b", override_settings={"enable_prompt_comments": False})
    assert json.loads(off.json()["info"])["all_prompts"] == ["a red # b"]
