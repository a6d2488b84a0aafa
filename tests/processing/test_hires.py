"""Hires fix: target sizes, second-pass steps and sizes, infotext."""

from __future__ import annotations

import pytest

from modules.processing import hires
from modules.processing.job import GenerationJob


@pytest.mark.parametrize(
    ("kw", "size"),
    [
        (dict(hr_scale=2.0), (128, 96)),
        (dict(hr_scale=1.5), (96, 72)),
        (dict(hr_resize_x=160), (160, 120)),
        (dict(hr_resize_y=120), (160, 120)),
        (dict(hr_resize_x=128, hr_resize_y=128), (170, 128)),  # cover, then crop to fill
    ],
)
def test_target_size(kw, size):
    target = hires.target_size(GenerationJob(width=64, height=48, **kw))
    assert (target.width, target.height) == size


@pytest.mark.parametrize("upscaler", ["Latent", "Latent (nearest)", "Lanczos"])
def test_second_pass_output_size_and_steps(runtime, upscaler):
    calls = []
    unet = runtime.model().unet
    original = unet.forward
    unet.forward = lambda sample, *a, **k: calls.append(tuple(sample.shape[-2:])) or original(sample, *a, **k)
    try:
        result = runtime.txt2img(
            GenerationJob(
                prompt="a red circle",
                steps=5,
                width=64,
                height=48,
                seed=3,
                sampler_name="Euler",
                enable_hr=True,
                hr_scale=2.0,
                hr_upscaler=upscaler,
                hr_second_pass_steps=3,
                denoising_strength=0.5,
                do_not_save_samples=True,
            )
        )
    finally:
        del unet.forward
    assert result.images[0].size == (128, 96)
    assert calls == [(6, 8)] * 5 + [(12, 16)] * 3
    text = result.infotexts[0]
    for pair in (
        "Size: 64x48",
        "Hires upscale: 2.0",
        "Hires steps: 3",
        f"Hires upscaler: {upscaler}",
        "Denoising strength: 0.5",
    ):
        assert pair in text


def test_unknown_upscaler_is_rejected(runtime):
    with pytest.raises(ValueError, match="hr_upscaler"):
        runtime.txt2img(GenerationJob(enable_hr=True, hr_upscaler="ESRGAN_4x", width=64, height=64, steps=2))


@pytest.fixture
def two_checkpoints(tmp_path):
    """A runtime loading real files: checkpoints "first" and "second" (different tiny weights)."""
    from modules import cmd_args
    from modules.models.loader import save_checkpoint
    from modules.models.tiny import build_tiny_bundle
    from modules.runtime import Runtime

    runtime = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu", "--no-bundled-models"]))
    for seed, name in [(0, "first"), (1, "second")]:
        save_checkpoint(build_tiny_bundle(seed=seed), runtime.paths.ckpt_dir / f"{name}.safetensors")
    runtime.models.refresh()
    runtime.options.set("sd_model_checkpoint", "first")
    return runtime


def hires_job(**kw) -> GenerationJob:
    return GenerationJob(
        **{
            **dict(
                prompt="a red circle",
                steps=3,
                width=64,
                height=48,
                seed=3,
                sampler_name="Euler",
                enable_hr=True,
                hr_scale=1.5,
                hr_upscaler="Latent",
                denoising_strength=0.6,
                do_not_save_samples=True,
            ),
            **kw,
        }
    )


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_hires_checkpoint_runs_the_second_pass_on_that_model_for_this_job_only(two_checkpoints, upscaler):
    import numpy as np

    from modules.infotext import infotext_to_settings, parse_infotext

    runtime = two_checkpoints
    same = runtime.txt2img(hires_job(hr_upscaler=upscaler))
    other = runtime.txt2img(hires_job(hr_upscaler=upscaler, hr_checkpoint_name="second", n_iter=2))
    assert not np.array_equal(np.asarray(same.images[0]), np.asarray(other.samples[0]))
    text = other.infotexts[other.index_of_first_image]
    second = runtime.models.get("second")
    assert "Model: first," in text and f"Hires checkpoint: second [{second.short_hash}]," in text
    # The second image's first pass ran on the job's model again: it equals that seed alone.
    alone = runtime.txt2img(hires_job(hr_upscaler=upscaler, hr_checkpoint_name="second", seed=4))
    assert np.array_equal(np.asarray(other.samples[1]), np.asarray(alone.images[0]))
    # Nothing outlives the job: the selection is unchanged and a plain job gives the same bytes.
    assert runtime.options["sd_model_checkpoint"] == "first"
    assert np.array_equal(
        np.asarray(runtime.txt2img(hires_job(hr_upscaler=upscaler)).images[0]), np.asarray(same.images[0])
    )
    # The parameters text brings the hires checkpoint back.
    fields = infotext_to_settings(parse_infotext(text))
    again = hires_job(hr_upscaler=upscaler, hr_checkpoint_name=fields["hr_checkpoint_name"])
    assert np.array_equal(np.asarray(runtime.txt2img(again).images[0]), np.asarray(other.samples[0]))
    # Naming the job's own checkpoint is the same as "Use same checkpoint".
    own = runtime.txt2img(hires_job(hr_upscaler=upscaler, hr_checkpoint_name="Use same checkpoint"))
    assert np.array_equal(np.asarray(own.images[0]), np.asarray(same.images[0]))
