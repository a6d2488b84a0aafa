"""Live previews: the preview methods, "every N steps", the output's size, and the demo model's own
latent-to-RGB map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from modules import paths
from modules.models import latent_rgb
from modules.models.loader import load_checkpoint, save_checkpoint
from modules.options import PREVIEW_CHEAP, PREVIEW_FULL
from modules.processing import preview
from modules.processing.job import GenerationJob
from modules.processing.vae import encode_pixels, images_to_tensor
from modules.progress import Progress
from scripts.demo import stages

DEMO = paths.BUNDLED_MODELS / "demo-shapes-sd1.safetensors"


def test_approximate_applies_factors_and_bias_per_latent_cell():
    mapping = latent_rgb.LatentRgb(((1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0)), (0.0, 0.0, -1.0))
    latent = torch.zeros(4, 2, 3)
    latent[0, 0, 0] = 1.0  # the top-left cell: red full on, blue from the bias at -1
    image = np.asarray(preview.approximate(latent, mapping))
    assert image.shape == (2, 3, 3)
    assert tuple(image[0, 0]) == (255, 128, 0) and tuple(image[1, 2]) == (128, 128, 0)


def test_preview_is_scaled_to_the_output_size_by_nearest_neighbour(tiny_bundle):
    latent = torch.randn(4, 6, 8, generator=torch.Generator().manual_seed(0))
    small = preview.approximate(latent, preview.latent_map(tiny_bundle))
    big = preview.preview_image(tiny_bundle, latent, PREVIEW_CHEAP, (64, 48))
    assert big.size == (64, 48)
    # Every 8x8 block is one latent cell's colour, exactly.
    assert np.array_equal(np.asarray(big)[::8, ::8], np.asarray(small))
    assert np.array_equal(np.asarray(big)[7::8, 7::8], np.asarray(small))
    full = preview.preview_image(tiny_bundle, latent, PREVIEW_FULL, (64, 48))
    assert full.size == (64, 48)
    assert not np.array_equal(np.asarray(full)[::8, ::8], np.asarray(small))  # the VAE, not the map


@pytest.mark.parametrize(("every", "steps", "shown"), [(1, 5, 4), (2, 7, 3), (3, 7, 2), (0, 5, 0)])
def test_previews_every_n_steps(runtime, monkeypatch, every, steps, shown):
    sizes = []
    set_preview = Progress.set_preview  # every task has its own Progress: watch them all
    monkeypatch.setattr(
        Progress, "set_preview", lambda self, image: (sizes.append(image.size), set_preview(self, image))
    )
    job = GenerationJob(
        prompt="a red circle",
        steps=steps,
        width=64,
        height=48,
        seed=3,
        sampler_name="Euler",
        do_not_save_samples=True,
        override_settings={"show_progress_every_n_steps": every},
    )
    runtime.txt2img(job)
    # The last step shows the result itself, so it gets no preview (as A1111).
    assert sizes == [(64, 48)] * shown


def test_a_checkpoint_keeps_its_own_map(tmp_path, tiny_bundle):
    mapping = latent_rgb.LatentRgb(((0.1, 0.2, 0.3),) * 4, (0.5, 0.0, -0.5))
    tiny_bundle.latent_rgb = mapping
    try:
        save_checkpoint(tiny_bundle, tmp_path / "m.safetensors")
    finally:
        tiny_bundle.latent_rgb = None
    assert load_checkpoint(tmp_path / "m.safetensors").latent_rgb == mapping
    assert latent_rgb.parse({latent_rgb.METADATA_KEY: '{"factors": [[1, 2, 3]]}'}) is None
    assert latent_rgb.parse({latent_rgb.METADATA_KEY: '{"factors": [[1, 2, "x"]]*4}'}) is None


@pytest.mark.slow
def test_demo_models_own_map_fits_its_vae_better_than_the_sd_one():
    bundle = load_checkpoint(DEMO)
    assert bundle.latent_rgb is not None
    images = stages.Dataset.render(48, 99, emphasis=False).images  # not the images it was fitted on
    pixels = images_to_tensor([Image.fromarray(i) for i in images])
    latents = encode_pixels(bundle, pixels, torch.Generator().manual_seed(0))
    target = torch.nn.functional.avg_pool2d(pixels, 8)

    def error(mapping: latent_rgb.LatentRgb) -> float:
        factors, bias = torch.tensor(mapping.factors), torch.tensor(mapping.bias)
        rgb = torch.einsum("nchw,cr->nrhw", latents, factors) + bias[None, :, None, None]
        return float((rgb.clamp(-1, 1) - target).abs().mean() * 127.5)

    own, family = error(bundle.latent_rgb), error(latent_rgb.FAMILY[bundle.arch])
    assert own < 50 and own < 0.6 * family, (own, family)
