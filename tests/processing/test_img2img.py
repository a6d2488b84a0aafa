"""img2img and inpainting on the tiny model: strength, steps, masks, only-masked, 9- and 5-channel models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from modules.models.tiny import build_tiny_bundle
from modules.processing import vae
from modules.processing.job import GenerationJob
from modules.sampling.denoiser import DenoiserHooks


def picture(w: int = 64, h: int = 64) -> Image.Image:
    image = Image.new("RGB", (w, h), (30, 60, 200))
    ImageDraw.Draw(image).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=(220, 40, 40))
    return image


def job(**kw) -> GenerationJob:
    defaults = dict(
        prompt="a red circle",
        steps=10,
        width=64,
        height=64,
        seed=7,
        sampler_name="Euler",
        do_not_save_samples=True,
        init_images=[picture()],
        denoising_strength=0.5,
    )
    return GenerationJob(**{**defaults, **kw})


def count_unet_calls(runtime, run):
    calls = []
    unet = runtime.model().unet
    original = unet.forward

    def counting(sample, *args, **kwargs):
        calls.append(sample.shape)
        return original(sample, *args, **kwargs)

    unet.forward = counting
    try:
        result = run()
    finally:
        del unet.forward
    return result, calls


def test_strength_zero_returns_the_input_through_the_vae(runtime, tiny_bundle):
    result, calls = count_unet_calls(runtime, lambda: runtime.img2img(job(denoising_strength=0.0)))
    assert calls == []
    expected = vae.decode(
        tiny_bundle, vae.encode(tiny_bundle, [picture()], torch.Generator().manual_seed(7))
    )[0]
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(expected))
    assert "Denoising strength: 0.0" in result.infotexts[0]


@pytest.mark.parametrize(
    ("strength", "fix", "expected"), [(0.5, False, 6), (1.0, False, 10), (0.3, False, 4), (0.5, True, 10)]
)
def test_steps_run_per_strength(runtime, strength, fix, expected):
    runtime.options.set("img2img_fix_steps", fix)
    _, calls = count_unet_calls(runtime, lambda: runtime.img2img(job(denoising_strength=strength)))
    assert len(calls) == expected  # Euler: one UNet call per step; A1111 runs int(strength*steps)+1 steps


def test_scheduled_prompt_counts_the_shortened_run(runtime):
    seen = []
    runtime.denoiser_hooks = DenoiserHooks(before_step=[lambda step: seen.append(step.text_cond[0][0])])
    runtime.img2img(job(prompt="[red:blue:0.5]", steps=20, denoising_strength=0.5))  # 11 steps run
    switches = [i for i in range(1, len(seen)) if not torch.equal(seen[i], seen[i - 1])]
    assert len(seen) == 11
    assert switches == [6]  # int(0.5 * 11) = 5: calls 0..5 use "red", then "blue"


def test_mask_keeps_pixels_outside_it(runtime):
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 31, 63), fill=255)
    result = runtime.img2img(job(mask=mask, mask_blur=0, denoising_strength=0.9))
    out, src = np.asarray(result.images[0]), np.asarray(picture())
    assert np.array_equal(out[:, 32:], src[:, 32:])
    assert not np.array_equal(out[:, :32], src[:, :32])
    assert "Mask blur: 0" in result.infotexts[0]


def test_only_masked_crops_and_pastes_back_in_place(runtime):
    source = picture(128, 96)
    mask = Image.new("L", source.size, 0)
    ImageDraw.Draw(mask).rectangle((80, 40, 99, 59), fill=255)
    result = runtime.img2img(
        job(
            init_images=[source],
            mask=mask,
            mask_blur=0,
            inpaint_full_res=True,
            inpaint_full_res_padding=8,
            denoising_strength=0.9,
        )
    )
    out, src = np.asarray(result.images[0]), np.asarray(source)
    assert result.images[0].size == source.size  # pasted back into the full picture
    changed = np.argwhere((out != src).any(axis=2))
    assert len(changed) > 0
    y1, x1 = changed.min(axis=0)
    y2, x2 = changed.max(axis=0)
    assert 80 <= x1 and x2 <= 99 and 40 <= y1 and y2 <= 59
    assert "Inpaint area: Only masked" in result.infotexts[0]


def test_masked_content_latent_nothing_differs_from_original(runtime):
    mask = Image.new("L", (64, 64), 255)
    a = runtime.img2img(job(mask=mask, mask_blur=0, inpainting_fill=1, denoising_strength=0.6))
    b = runtime.img2img(job(mask=mask, mask_blur=0, inpainting_fill=3, denoising_strength=0.6))
    assert not np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
    assert "Masked content: latent nothing" in b.infotexts[0]


def test_nine_channel_inpainting_model_gets_mask_and_masked_image(runtime):
    runtime.model_loader = lambda bundle=build_tiny_bundle(unet_in_channels=9): bundle
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 31, 63), fill=255)
    _, calls = count_unet_calls(runtime, lambda: runtime.img2img(job(mask=mask, mask_blur=0)))
    assert calls and all(shape[1] == 9 for shape in calls)


def test_depth_map_reaches_the_fifth_channel(runtime):
    bundle = build_tiny_bundle(unet_in_channels=5)
    runtime.model_loader = lambda: bundle
    depth = Image.linear_gradient("L").resize((64, 64))  # top dark, bottom bright
    inputs = []
    original = bundle.unet.forward
    bundle.unet.forward = lambda sample, *a, **k: inputs.append(sample) or original(sample, *a, **k)
    result = runtime.img2img(job(depth_map=depth))
    channel = inputs[0][0, 4]
    assert channel.shape == (8, 8)
    assert channel[0].mean() < -0.5 and channel[-1].mean() > 0.5  # normalised to -1..1, gradient kept
    assert len(result.images) == 1 and [i.mode for i in result.extra_images] == ["L"]  # the map used


def test_the_depth_map_is_an_extra_image_not_a_sample(runtime):
    runtime.model_loader = lambda bundle=build_tiny_bundle(unet_in_channels=5): bundle
    depth = Image.linear_gradient("L").resize((64, 64))
    result = runtime.img2img(job(depth_map=depth, batch_size=2, n_iter=2, steps=2))
    # Was 7 images, 6 "samples" and 4 seeds: the grid, 4 images and the map once per batch.
    assert (
        len(result.images) == 5 and len(result.samples) == 4 == len(result.seeds) == len(result.infotexts) - 1
    )
    assert len(result.extra_images) == 1 and result.extra_images[0].mode == "L"  # shown once per job


def test_depth_model_missing_is_a_clear_error(runtime):
    runtime.model_loader = lambda bundle=build_tiny_bundle(unet_in_channels=5): bundle
    with pytest.raises(ValueError, match="depth map"):
        runtime.img2img(job())


def test_wrong_number_of_init_images_names_the_field(runtime):
    with pytest.raises(ValueError, match="init_images"):
        runtime.img2img(job(init_images=[picture(), picture()], batch_size=3))


def test_txt2img_and_hires_on_an_inpainting_model(runtime):
    runtime.model_loader = lambda bundle=build_tiny_bundle(unet_in_channels=9): bundle
    _, calls = count_unet_calls(
        runtime,
        lambda: runtime.txt2img(
            GenerationJob(
                prompt="a red circle",
                steps=3,
                width=64,
                height=64,
                sampler_name="Euler",
                do_not_save_samples=True,
                enable_hr=True,
                hr_scale=1.5,
                hr_second_pass_steps=2,
                denoising_strength=0.5,
            )
        ),
    )
    assert [shape[1] for shape in calls] == [9] * 5  # mask + blank image latent on both passes


def test_txt2img_on_a_depth_model_says_to_use_img2img(runtime):
    runtime.model_loader = lambda bundle=build_tiny_bundle(unet_in_channels=5): bundle
    with pytest.raises(ValueError, match="img2img"):
        runtime.txt2img(GenerationJob(prompt="x", steps=2, width=64, height=64, do_not_save_samples=True))


@pytest.mark.parametrize("upscaler", ["Lanczos", "Latent"])
def test_hires_on_an_inpainting_model_below_full_mask_strength_sees_the_upscaled_image(runtime, upscaler):
    from modules.processing import hires

    bundle = build_tiny_bundle(unet_in_channels=9)
    runtime.model_loader = lambda: bundle
    runtime.options.set("inpainting_mask_weight", 0.5)
    base = dict(prompt="a red circle", steps=3, width=64, height=64, seed=5, sampler_name="Euler")
    first = runtime.txt2img(GenerationJob(**base, do_not_save_samples=True)).images[0]
    upscaled, inputs = [], []
    original_upscale, original_forward = hires.upscale, bundle.unet.forward

    def recording_upscale(*args):
        result = original_upscale(*args)
        upscaled.append(result[0])
        return result

    hires.upscale = recording_upscale
    bundle.unet.forward = lambda sample, *a, **k: inputs.append(sample) or original_forward(sample, *a, **k)
    try:
        runtime.txt2img(
            GenerationJob(
                **base,
                do_not_save_samples=True,
                enable_hr=True,
                hr_scale=1.5,
                hr_upscaler=upscaler,
                hr_second_pass_steps=2,
                denoising_strength=0.5,
            )  # fmt: skip
        )
    finally:
        hires.upscale = original_upscale
        del bundle.unet.forward
    cond = next(x for x in inputs if x.shape[-1] == 12)[0, 4:]
    # A1111: the mask of ones, then the latent of (1 - 0.5) x the upscaled image (not a blank one).
    if upscaler == "Lanczos":  # the upscaled picture as 0..1, where the VAE takes -1..1 (A1111 quirk)
        pixels = (vae.images_to_tensor([first.resize((96, 96), Image.Resampling.LANCZOS)]) + 1) / 2
    else:
        pixels = vae.decode_pixels(bundle, upscaled[0])
    expected = vae.encode_pixels(bundle, 0.5 * pixels, torch.Generator().manual_seed(5))[0]
    assert torch.equal(cond[0], torch.ones(12, 12))
    assert torch.allclose(cond[1:], expected, atol=1e-5)
