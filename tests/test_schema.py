"""The field declarations and everything derived from them: checks on every path a value comes in by
(UI form, /options, override_settings, config.json, a pasted parameters text), the API models, the UI
controls, and the round trip of every job field through the parameters text."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient

from modules import cmd_args
from modules.api import models as api_models
from modules.api.server import create_app
from modules.fields import Field, FieldError
from modules.infotext import infotext_to_settings, parse_infotext
from modules.options import Options, builtin_definitions
from modules.processing.job import JOB_FIELDS, GenerationJob, MaskedContent, ResizeMode
from modules.runtime import Runtime

# (setting, a value of the wrong type, a value out of range or not among the choices)
BAD_SETTINGS = [
    ("emphasis", 5, "bogus"),
    ("randn_source", ["CPU"], "bogus"),
    ("samples_format", 1.5, "exe"),
    ("sd_checkpoints_limit", "many", -3),
    ("CLIP_stop_at_last_layers", "x", 50),
    ("s_noise", "nan", 5.0),
    ("eta_ancestral", float("inf"), -0.5),
    ("show_progress_every_n_steps", 2.5, 100),
    ("samples_save", "perhaps", None),
]


def _bad_values():
    for key, wrong_type, out_of_range in BAD_SETTINGS:
        yield key, wrong_type
        if out_of_range is not None:
            yield key, out_of_range


@pytest.fixture
def runtime(tmp_path, tiny_bundle):
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu", "--no-bundled-models"]))
    rt.model_loader = lambda: tiny_bundle
    return rt


# --- Field itself ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (Field(int, minimum=1, maximum=10, name="n"), "7", 7),
        (Field(int, minimum=1, maximum=10, name="n"), 7.0, 7),
        (Field(float, name="x"), "0.5", 0.5),
        (Field(bool, name="b"), "true", True),
        (Field(bool, name="b"), 0, False),
        (Field(str, choices=("a", "b"), name="c"), "b", "b"),
        (Field(str, nullable=True, same="Use same", name="s"), "Use same", None),
        (Field(bool, choices=("Whole picture", "Only masked"), name="area"), "Only masked", True),
    ],
)
def test_field_converts_what_forms_and_json_send(spec, value, expected):
    assert spec.check(value) == expected


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (Field(int, minimum=1, maximum=10, name="n"), 11),
        (Field(int, name="n"), 1.5),
        (Field(int, name="n"), True),
        (Field(int, name="n"), float("nan")),
        (Field(float, name="x"), float("inf")),
        (Field(float, name="x"), "1e400"),
        (Field(float, name="x"), "nan"),
        (Field(str, choices=("a", "b"), name="c"), "z"),
        (Field(str, name="s"), None),
        (Field(str, name="s"), 5),
        (Field(list, name="l"), "text"),
    ],
)
def test_field_refuses_with_a_message_naming_it_and_what_it_accepts(spec, value):
    with pytest.raises(FieldError) as caught:
        spec.check(value)
    assert caught.value.name == spec.name
    assert str(caught.value).startswith(f"{spec.name}: ")


def test_coded_fields_take_codes_and_labels_and_refuse_others():
    spec = JOB_FIELDS["resize_mode"]
    assert spec.check(1) is ResizeMode.CROP_AND_RESIZE
    assert spec.check("Resize and fill") is ResizeMode.RESIZE_AND_FILL
    for bad in (4, -1, "Stretch", 1.5):
        with pytest.raises(FieldError, match="resize_mode"):
            spec.check(bad)


def test_every_job_field_is_declared_with_a_range_or_choices_where_it_is_a_number_or_choice():
    for name, spec in JOB_FIELDS.items():
        if spec.kind in (int, float) and spec.coded is None:
            assert spec.minimum is not None and spec.maximum is not None, name
        if spec.control in ("radio",):
            assert spec.choices, name


def test_every_numeric_setting_has_a_range():
    for key, info in builtin_definitions().items():
        spec = info.spec
        if spec.kind in (int, float):
            assert spec.minimum is not None and spec.maximum is not None, key


# --- settings on every path -------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value"), list(_bad_values()))
def test_settings_refuse_garbage_when_set(tmp_path, key, value):
    options = Options(tmp_path / "config.json")
    with pytest.raises(FieldError, match=key):
        options.update({"eta_ddim": 0.5, key: value})
    assert options.get("eta_ddim") == 0.0  # nothing of a refused update is stored
    with pytest.raises(FieldError, match=key):
        options.snapshot({key: value})
    assert not (tmp_path / "config.json").exists() or key not in json.loads(
        (tmp_path / "config.json").read_text()
    )


@pytest.mark.parametrize(("key", "value"), list(_bad_values()))
def test_post_options_and_override_settings_answer_422_naming_the_setting(runtime, key, value):
    with TestClient(create_app(runtime)) as client:
        # allow_nan: JSON's NaN/Infinity literals, which Python's json module reads as floats
        body = json.dumps({key: value, "eta_ddim": 0.5}, allow_nan=True)
        response = client.post(
            "/sdapi/v1/options", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert key in response.json()["detail"]
        assert runtime.options.get("eta_ddim") == 0.0
        payload = {"prompt": "x", "steps": 1, "width": 64, "height": 64, "override_settings": {key: value}}
        body = json.dumps(payload, allow_nan=True)
        response = client.post(
            "/sdapi/v1/txt2img", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert key in response.json()["detail"]


def test_options_body_with_a_literal_nan_is_refused_and_not_written(runtime):
    with TestClient(create_app(runtime)) as client:
        response = client.post(
            "/sdapi/v1/options",
            content=b'{"s_noise": NaN}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422
    config = runtime.paths.config_file
    assert not config.exists() or "NaN" not in config.read_text()


def test_a_config_json_holding_garbage_starts_with_defaults_for_the_bad_keys(tmp_path, capsys):
    config = tmp_path / "config.json"
    garbage = {
        key: value for key, value in _bad_values() if not (isinstance(value, float) and math.isnan(value))
    }
    garbage |= {"samples_format": "exe", "s_noise": "nan", "eta_ddim": 0.5, "extension_setting": 7}
    config.write_text(json.dumps(garbage))
    options = Options(config)
    warnings = capsys.readouterr().out
    for key, *_ in BAD_SETTINGS:
        assert options.get(key) == builtin_definitions()[key].default, key
        assert key in warnings
    assert options.get("eta_ddim") == 0.5  # a good value survives
    assert options.snapshot()["extension_setting"] == 7  # kept for an extension that declares it later


def test_an_extension_setting_declared_later_is_checked_then(tmp_path, capsys):
    from modules.options import OptionInfo

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"ext_strength": 9.0, "ext_mode": "b"}))
    options = Options(config)
    slider = {"minimum": 0.0, "maximum": 1.0}
    options.add(OptionInfo("ext_strength", 0.5, "Strength", "ext", "slider", slider))
    options.add(OptionInfo("ext_mode", "a", "Mode", "ext", "radio", {"choices": ["a", "b"]}))
    assert options.get("ext_strength") == 0.5 and "ext_strength" in capsys.readouterr().out
    assert options.get("ext_mode") == "b"
    with pytest.raises(FieldError, match="ext_mode"):
        options.set("ext_mode", "c")


def test_settings_tab_apply_reports_the_refused_setting(runtime):
    from modules.ui import settings

    message = settings.apply(runtime, ["CLIP_stop_at_last_layers", "samples_format"], [50, "jpg"])
    assert "CLIP_stop_at_last_layers" in message and "error" in message
    assert runtime.options.get("samples_format") == "png"


def test_a_pasted_parameters_text_never_sets_a_value_its_setting_refuses():
    text = "a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Clip skip: 50, RNG: bogus"
    overrides = infotext_to_settings(parse_infotext(text)).get("override_settings", {})
    assert "CLIP_stop_at_last_layers" not in overrides and "randn_source" not in overrides


# --- jobs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", 0),
        ("steps", 5000),
        ("width", 10**6),
        ("cfg_scale", float("nan")),
        ("denoising_strength", 1.5),
        ("eta", 1e300),
        ("s_churn", -1),
        ("s_noise", float("inf")),
        ("seed_resize_from_w", 10**9),
        ("subseed_strength", 2),
        ("batch_size", 1000),
        ("inpainting_fill", 9),
        ("resize_mode", "sideways"),
        ("styles", [1, 2]),
        ("script_args", [object()]),
    ],
)
def test_job_validation_names_the_field_and_its_range(field, value):
    job = GenerationJob()
    setattr(job, field, value)
    with pytest.raises(FieldError) as caught:
        job.validate()
    assert caught.value.name == field and "must be" in str(caught.value)


def test_api_request_models_are_derived_from_the_job_declaration():
    txt2img, img2img = (
        api_models.StableDiffusionProcessingTxt2Img,
        api_models.StableDiffusionProcessingImg2Img,
    )
    for name, spec in JOB_FIELDS.items():
        for model, mode in ((txt2img, "txt2img"), (img2img, "img2img")):
            present = spec.api and mode in spec.modes
            declared_by_the_api = name in (
                "init_images",
                "mask",
                "latent_mask",
            )  # base64 texts there, images here
            assert (name in model.model_fields) == present or declared_by_the_api, (name, mode)
            if present:
                default = model.model_fields[name].get_default(call_default_factory=True)
                assert default == spec.public_default or (
                    default in ([], {}) and spec.public_default in ([], {})
                )


# A1111 1.10's request field names and API defaults (the OpenAPI schema clients are generated from).
A1111_COMMON = {
    "prompt": "", "negative_prompt": "", "styles": None, "seed": -1, "subseed": -1, "subseed_strength": 0,
    "seed_resize_from_h": -1, "seed_resize_from_w": -1, "sampler_name": None, "scheduler": None,
    "batch_size": 1, "n_iter": 1, "steps": 50, "cfg_scale": 7.0, "width": 512, "height": 512,
    "restore_faces": None, "tiling": None, "do_not_save_samples": False, "do_not_save_grid": False,
    "eta": None, "denoising_strength": 0.75, "s_min_uncond": None, "s_churn": None, "s_tmax": None,
    "s_tmin": None, "s_noise": None, "override_settings": None, "override_settings_restore_afterwards": True,
    "refiner_checkpoint": None, "refiner_switch_at": None, "disable_extra_networks": False,
    "firstpass_image": None, "comments": None, "sampler_index": "Euler", "script_name": None,
    "script_args": [], "send_images": True, "save_images": False, "alwayson_scripts": {},
    "force_task_id": None, "infotext": None,
}  # fmt: skip
A1111_TXT2IMG = {
    "enable_hr": False, "firstphase_width": 0, "firstphase_height": 0, "hr_scale": 2.0, "hr_upscaler": None,
    "hr_second_pass_steps": 0, "hr_resize_x": 0, "hr_resize_y": 0, "hr_checkpoint_name": None,
    "hr_sampler_name": None, "hr_scheduler": None, "hr_prompt": "", "hr_negative_prompt": "",
}  # fmt: skip
A1111_IMG2IMG = {
    "init_images": None, "resize_mode": 0, "image_cfg_scale": None, "mask": None, "mask_blur_x": 4,
    "mask_blur_y": 4, "mask_blur": None, "mask_round": True, "inpainting_fill": 0, "inpaint_full_res": True,
    "inpaint_full_res_padding": 0, "inpainting_mask_invert": 0, "initial_noise_multiplier": None,
    "latent_mask": None, "include_init_images": False,
}  # fmt: skip


def test_openapi_schema_keeps_a1111_field_names_and_defaults(runtime):
    with TestClient(create_app(runtime)) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name, expected in (
        ("StableDiffusionProcessingTxt2Img", A1111_COMMON | A1111_TXT2IMG),
        ("StableDiffusionProcessingImg2Img", A1111_COMMON | A1111_IMG2IMG),
    ):
        properties = schemas[name]["properties"]
        assert set(properties) == set(expected), name
        for field, default in expected.items():
            assert properties[field].get("default") == default, (name, field)
    steps = schemas["StableDiffusionProcessingTxt2Img"]["properties"]["steps"]
    assert (steps["minimum"], steps["maximum"]) == (1, 1000)  # ranges are documented to clients


def test_ui_controls_are_made_from_the_declarations():
    import gradio as gr

    from modules.ui.form import control

    with gr.Blocks():
        steps = control("steps", "txt2img")
        fill = control("inpainting_fill", "img2img")
        sampler = control("hr_sampler_name", "txt2img", choices=["Euler", "DDIM"])
        resize = control("resize_mode", "img2img")
    assert (steps.minimum, steps.maximum, steps.value, steps.step) == (1, 150, 20, 1)
    assert (steps.label, steps.elem_id) == ("Sampling steps", "txt2img_steps")
    assert fill.value == "original" and fill.type == "index" and fill.elem_id == "img2img_inpainting_fill"
    assert [c[0] for c in sampler.choices] == ["Use same sampler", "Euler", "DDIM"]
    assert resize.elem_id == "resize_mode"  # A1111's id, without the tab


def test_ui_form_values_become_the_same_job_as_the_api_request(runtime):
    """Equal inputs through the txt2img form and through the API build equal jobs."""
    import gradio as gr

    from modules.api import generation
    from modules.ui.form import JobForm

    inputs = {
        "prompt": "a red circle", "negative_prompt": "blue", "sampler_name": "Euler a", "scheduler": "Karras",
        "steps": 12, "width": 64, "height": 96, "n_iter": 2, "batch_size": 3, "cfg_scale": 4.5, "seed": 77,
        "subseed": 5, "subseed_strength": 0.25, "seed_resize_from_w": 0, "seed_resize_from_h": 0,
        "enable_hr": True, "hr_upscaler": "Latent (bicubic)", "hr_second_pass_steps": 3,
        "denoising_strength": 0.6, "hr_scale": 1.5, "hr_resize_x": 0, "hr_resize_y": 0,
        "hr_sampler_name": "DDIM", "hr_scheduler": "Use same scheduler", "hr_prompt": "hp",
        "hr_negative_prompt": "hn",
    }  # fmt: skip
    with gr.Blocks():
        form = JobForm()
        for name in inputs:
            form.control(name, "txt2img", choices=[inputs[name]] if JOB_FIELDS[name].lookup else None)
    # Gradio hands sliders' values over as floats.
    ui_values = [
        float(v) if isinstance(v, int) and JOB_FIELDS[k].control == "slider" else v for k, v in inputs.items()
    ]
    ui_job = form.to_job(ui_values)
    api_inputs = {**inputs, "hr_scheduler": None}
    request = api_models.StableDiffusionProcessingTxt2Img(**api_inputs)
    api_job = generation.txt2img_job(runtime, request)
    ui_job.validate()
    # What only the API sets: saving follows save_images there (off by default), as in A1111.
    api_job.do_not_save_samples = api_job.do_not_save_grid = False
    assert api_job == ui_job


def test_img2img_form_and_api_agree_on_the_coded_fields(runtime):
    import gradio as gr
    from PIL import Image

    from modules.api import codec, generation
    from modules.ui.form import JobForm

    with gr.Blocks():
        form = JobForm()
        for name in (
            "resize_mode",
            "inpainting_fill",
            "inpaint_full_res",
            "inpainting_mask_invert",
            "mask_blur",
        ):
            form.control(name, "img2img")
    # Radios of type "index" hand over the chosen label's index.
    ui_job = form.to_job([2, 3, 1, 1, 8.0], init_images=[Image.new("RGB", (8, 8))])
    image = codec.encode_image(Image.new("RGB", (8, 8)), "png")
    request = api_models.StableDiffusionProcessingImg2Img(
        init_images=[image], resize_mode=2, inpainting_fill=3, inpaint_full_res=True,
        inpainting_mask_invert=1, mask_blur=8,
    )  # fmt: skip
    api_job = generation.img2img_job(runtime, request)
    for name in ("resize_mode", "inpainting_fill", "inpaint_full_res", "inpainting_mask_invert", "mask_blur"):
        assert getattr(api_job, name) == getattr(ui_job, name), name
    assert ui_job.inpainting_fill is MaskedContent.LATENT_NOTHING
