"""Semantic round trip of the parameters text: job -> generated image's text -> job.

Every job field and every setting that declares a parameters-text key is either set to a non-default
value in one of the jobs below and must come back equal, or is listed in NOT_COVERED with the reason.
A field declared later without either fails ``test_every_declared_key_is_covered``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modules import cmd_args
from modules.infotext import infotext_to_settings, parse_infotext
from modules.options import builtin_definitions
from modules.processing.job import JOB_FIELDS, GenerationJob
from modules.runtime import Runtime

TXT2IMG = dict(
    prompt="a (red:1.2) circle",
    negative_prompt="blue, blurry",
    seed=123,
    subseed=77,
    subseed_strength=0.25,
    seed_resize_from_w=48,
    seed_resize_from_h=56,
    sampler_name="Euler",
    scheduler="Karras",
    steps=3,
    cfg_scale=5.5,
    width=64,
    height=48,
    enable_hr=True,
    hr_scale=1.5,
    hr_upscaler="Latent (nearest)",
    hr_second_pass_steps=2,
    hr_sampler_name="Euler a",
    hr_scheduler="Exponential",
    hr_prompt="a [red:blue:0.5] square",
    hr_negative_prompt="green",
    denoising_strength=0.6,
    override_settings={
        "CLIP_stop_at_last_layers": 2,
        "randn_source": "CPU",
        "emphasis": "No norm",
        "s_churn": 0.5,
        "s_tmin": 0.1,
        "s_tmax": 5.0,
        "s_noise": 0.9,
        "eta_ancestral": 0.8,
        "eta_noise_seed_delta": 31337,
        "s_min_uncond": 5.0,
        "s_min_uncond_all": True,
        "use_old_scheduling": True,
    },
)
HIRES_RESIZE = dict(
    TXT2IMG,
    hr_scale=2.0,
    hr_resize_x=96,
    hr_resize_y=80,
    override_settings={
        "skip_early_cond": 0.3,
        "randn_source": "NV",
        "token_merging_ratio": 0.5,
        "token_merging_ratio_hr": 0.3,
    },
)
IMG2IMG = dict(
    prompt="a green square",
    seed=9,
    sampler_name="DDIM",
    steps=4,
    width=64,
    height=64,
    denoising_strength=0.5,
    resize_mode=1,
    mask_blur=3,
    inpainting_fill=2,
    inpaint_full_res=True,
    inpaint_full_res_padding=12,
    inpainting_mask_invert=1,
    override_settings={"eta_ddim": 0.3, "initial_noise_multiplier": 0.9, "inpainting_mask_weight": 0.6},
)
CASES = {
    "txt2img + hires": ("txt2img", TXT2IMG),
    "hires resize": ("txt2img", HIRES_RESIZE),
    "inpaint": ("img2img", IMG2IMG),
}

NOT_COVERED = {
    "hr_resize_x": "covered by 'hires resize' (hr_scale is then not written)",
    "hr_checkpoint_name": "the tiny runtime holds one checkpoint",
    "sd_model_checkpoint": "read back as the model hash; checked in test_model_hash_is_read_as_the_checkpoint",
    "sd_vae": "the tiny model has no separate VAE file, so no VAE name is written",
    "initial_noise_multiplier": "a setting read back into override_settings; the job field of the same key is unset",
}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, tiny_bundle):
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path_factory.mktemp("rt")), "--device", "cpu"]))
    rt.model_loader = lambda: tiny_bundle
    return rt


@pytest.fixture(scope="module")
def inpaint_runtime(tmp_path_factory):
    from modules.models.tiny import build_tiny_bundle

    bundle = build_tiny_bundle(unet_in_channels=9)
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path_factory.mktemp("rt9")), "--device", "cpu"]))
    rt.model_loader = lambda: bundle
    return rt


def generate(runtime, mode: str, values: dict) -> str:
    job = GenerationJob(**values, do_not_save_samples=True, do_not_save_grid=True)
    if mode == "img2img":
        rng = np.random.default_rng(0)
        job.init_images = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))]
        mask = np.zeros((64, 64), np.uint8)
        mask[16:48, 16:48] = 255
        job.mask = Image.fromarray(mask)
        return runtime.img2img(job).infotexts[0]
    return runtime.txt2img(job).infotexts[0]


def read_back(text: str) -> dict:
    return infotext_to_settings(parse_infotext(text))


def expected_fields(values: dict) -> dict:
    fields = {k: v for k, v in values.items() if k in JOB_FIELDS and JOB_FIELDS[k].infotext}
    if values.get("hr_resize_x"):
        fields.pop("hr_scale")
    return fields


@pytest.mark.parametrize("case", CASES)
def test_job_fields_and_settings_come_back(case, runtime, inpaint_runtime):
    mode, values = CASES[case]
    text = generate(inpaint_runtime if mode == "img2img" else runtime, mode, values)
    back = read_back(text)
    for name, value in expected_fields(values).items():
        assert name in back, f"{name} ({JOB_FIELDS[name].infotext}) not read back from: {text}"
        assert back[name] == value, f"{name}: wrote {value!r}, read {back[name]!r} from: {text}"
    overrides = back.get("override_settings", {})
    for name, value in values["override_settings"].items():
        assert overrides.get(name) == value, (
            f"setting {name}: wrote {value!r}, read {overrides.get(name)!r}: {text}"
        )


def test_every_declared_key_is_covered():
    covered = set()
    for _, values in CASES.values():
        covered |= set(values) | set(values["override_settings"])
    declared = {n for n, f in JOB_FIELDS.items() if f.infotext} | {
        k for k, info in builtin_definitions().items() if info.infotext
    }
    missing = declared - covered - set(NOT_COVERED)
    assert not missing, f"declared with a parameters-text key but not round-tripped: {sorted(missing)}"
    assert not set(NOT_COVERED) - declared, "NOT_COVERED names something no longer declared"


def test_model_hash_is_read_as_the_checkpoint(runtime, tiny_bundle):
    text = generate(runtime, "txt2img", dict(prompt="x", steps=1, width=64, height=64))
    if tiny_bundle.short_hash:
        assert read_back(text)["override_settings"]["sd_model_checkpoint"] == tiny_bundle.short_hash
    else:
        assert "Model hash" not in parse_infotext(text)


def test_written_only_when_it_made_a_difference(runtime):
    """A1111 writes Emphasis only for prompts with ( or [, and Old prompt editing timelines only when the
    old rule changed a schedule; NGMS only when a call skipped the negative."""
    plain = dict(
        prompt="a red circle",
        steps=3,
        width=64,
        height=64,
        override_settings={"emphasis": "No norm", "use_old_scheduling": True, "s_min_uncond": 0.001},
    )
    params = parse_infotext(generate(runtime, "txt2img", plain))
    assert not {"Emphasis", "Old prompt editing timelines", "NGMS"} & set(params)
