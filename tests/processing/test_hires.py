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
