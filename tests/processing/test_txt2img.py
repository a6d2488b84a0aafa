"""txt2img end to end on the tiny model: sizes, determinism, seeds per image, saving, infotext."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modules.processing.job import GenerationJob


def job(**kw) -> GenerationJob:
    defaults = dict(
        prompt="a red circle",
        negative_prompt="blurry",
        steps=4,
        width=64,
        height=48,
        seed=1234,
        sampler_name="Euler a",
        do_not_save_samples=True,
    )
    return GenerationJob(**{**defaults, **kw})


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_image_of_requested_size(runtime):
    result = runtime.txt2img(job())
    assert len(result.images) == 1
    assert result.images[0].size == (64, 48)
    assert result.seeds == [1234]


def test_same_settings_give_identical_images(runtime):
    a = runtime.txt2img(job(sampler_name="DPM++ 2M"))
    b = runtime.txt2img(job(sampler_name="DPM++ 2M"))
    assert np.array_equal(pixels(a.images[0]), pixels(b.images[0]))
    c = runtime.txt2img(job(sampler_name="DPM++ 2M", seed=1235))
    assert not np.array_equal(pixels(a.images[0]), pixels(c.images[0]))


def test_a_seed_gives_the_same_image_at_any_batch_position(runtime):
    single = runtime.txt2img(job(seed=1235)).images[0]
    batch = runtime.txt2img(job(seed=1234, batch_size=3))
    assert batch.seeds == [1234, 1235, 1236]
    assert batch.index_of_first_image == 1 and batch.images[0].size == (128, 96)  # 2x2 grid comes first
    # Batched convolutions may round differently in the last bit: allow one level of 255.
    assert np.abs(pixels(batch.samples[1]) - pixels(single)).max() <= 1


def test_variation_seeds_keep_the_seed_across_a_batch(runtime):
    # A1111: with subseed_strength > 0 every image of the job has the seed, variation seeds go up by one.
    kw = dict(sampler_name="DPM++ 2M", subseed_strength=0.3)
    batch = runtime.txt2img(job(seed=1234, subseed=777, batch_size=2, n_iter=2, **kw))
    assert batch.seeds == [1234] * 4 and batch.subseeds == [777, 778, 779, 780]
    single = runtime.txt2img(job(seed=1234, subseed=778, **kw)).images[0]
    assert np.abs(pixels(batch.samples[1]) - pixels(single)).max() <= 1
    third = batch.infotexts[batch.index_of_first_image + 2]
    assert "Seed: 1234," in third and "Variation seed: 779," in third
    plain = runtime.txt2img(job(seed=1234, batch_size=2, n_iter=2, subseed=777))
    assert plain.seeds == [1234, 1235, 1236, 1237]


@pytest.mark.parametrize(
    ("sampler", "scheduler", "written"),
    [
        ("Euler a", "Automatic", "Automatic"),  # no schedule of its own: A1111 writes "Automatic"
        ("DDIM", "Automatic", "Automatic"),  # timestep spacing, a hidden type here
        ("DPM++ 2M", "Automatic", "Karras"),  # the sampler's own schedule, by its label
        ("Euler a", "Uniform", "Uniform"),
        ("DDIM", "Karras", "Karras"),
    ],
)
def test_schedule_type_is_written_as_a1111_writes_it(runtime, sampler, scheduler, written):
    text = runtime.txt2img(job(sampler_name=sampler, scheduler=scheduler, steps=2)).infotexts[0]
    assert f"Sampler: {sampler}, Schedule type: {written}, CFG scale" in text


def test_a_side_not_a_multiple_of_8_is_rounded_down_and_written_as_made(runtime):
    result = runtime.txt2img(job(width=63, height=71))
    assert result.images[0].size == (56, 64)
    assert "Size: 56x64," in result.infotexts[0]
    assert (result.parameters["width"], result.parameters["height"]) == (56, 64)


def test_random_seed_is_recorded(runtime):
    result = runtime.txt2img(job(seed=-1, n_iter=2))
    assert len(result.samples) == 2
    assert result.seeds[0] >= 0 and result.seeds[1] == result.seeds[0] + 1
    assert f"Seed: {result.seeds[0]}" in result.infotexts[0]


def test_infotext_describes_the_image(runtime):
    text = runtime.txt2img(job(clip_skip=2, cfg_scale=5.5)).infotexts[0]
    lines = text.split("\n")
    assert lines[0] == "a red circle"
    assert lines[1] == "Negative prompt: blurry"
    for pair in (
        "Steps: 4",
        "Sampler: Euler a",
        "CFG scale: 5.5",
        "Seed: 1234",
        "Size: 64x48",
        "Clip skip: 2",
    ):
        assert pair in lines[2]


def test_batch_grid_is_saved_and_shown_first(runtime):
    result = runtime.txt2img(job(batch_size=2, do_not_save_samples=False))
    assert len(result.images) == 3 and result.images[0].size == (128, 48)
    grids = list((runtime.paths.outputs_dir / "txt2img-grids").rglob("*.png"))
    assert len(grids) == 1
    runtime.options.update({"return_grid": False, "grid_save": False})
    assert len(runtime.txt2img(job(batch_size=2)).images) == 2


def test_saved_png_carries_parameters(runtime):
    result = runtime.txt2img(job(do_not_save_samples=False))
    assert len(result.saved_paths) == 1
    with Image.open(result.saved_paths[0]) as saved:
        assert saved.info["parameters"] == result.infotexts[0]
        assert saved.size == (64, 48)


def test_unknown_sampler_is_a_clear_error(runtime):
    with pytest.raises(ValueError, match="unknown sampler 'Eulerr'"):
        runtime.txt2img(job(sampler_name="Eulerr"))


def test_out_of_range_size_names_the_field(runtime):
    with pytest.raises(ValueError, match="width"):
        runtime.txt2img(job(width=0))


def test_interrupt_stops_between_model_calls(runtime):
    calls = []
    unet = runtime.model().unet
    original = unet.forward

    def counting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            runtime.progress.interrupt()
        return original(*args, **kwargs)

    unet.forward = counting
    try:
        result = runtime.txt2img(job(steps=10, n_iter=3, sampler_name="Euler"))
    finally:
        del unet.forward
    assert len(calls) == 2  # stopped before the third call
    assert result.interrupted and len(result.samples) == 1


def test_nan_from_the_unet_stops_with_a_clear_message(runtime):
    from modules.sampling.denoiser import NansError

    unet = runtime.model().unet
    original = unet.forward
    calls = []

    def broken(sample, *args, **kwargs):
        calls.append(1)
        out = original(sample, *args, **kwargs)
        out.sample = out.sample * float("nan")
        return out

    unet.forward = broken
    try:
        with pytest.raises(NansError, match="UNet.*checkpoint may be corrupt"):
            runtime.txt2img(job(steps=6))
    finally:
        del unet.forward
    assert len(calls) == 1  # stopped at the first bad call, not after the whole run
