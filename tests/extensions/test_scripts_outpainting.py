"""Outpainting (poor man's and mk2): canvas growth, tiles, and that the original survives the inpainting."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from modules.processing.job import GenerationJob

from modules.processing import img2img

from .scripts_helpers import FakeContext, load_scripts, module_of, script, tiny_runtime

REGISTRY = load_scripts(("outpainting",))
m = module_of(script(REGISTRY, "Poor man's outpainting"))


@pytest.mark.parametrize(
    ("size", "pixels", "directions", "expected"),
    [
        ((64, 64), 32, ["left", "right", "up", "down"], (32, 32, 32, 32)),
        ((64, 64), 64, ["right"], (0, 64, 0, 0)),
        ((64, 64), 32, ["right"], (0, 64, 0, 0)),  # the canvas grows to a multiple of 64 (A1111)
        ((100, 64), 8, ["left", "right"], (14, 14, 0, 0)),
        ((64, 48), 16, ["up"], (0, 0, 16, 0)),
    ],
)
def test_expansion(size, pixels, directions, expected):
    e = m.Expansion.for_image(*size, pixels, directions)
    assert (e.left, e.right, e.up, e.down) == expected


def test_tiles_round_trip():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (160, 224, 3), dtype=np.uint8), "RGB")
    tiles = m.split_tiles(image, 96, 64, 32)
    assert len(tiles) == 4 and len(tiles[0]) == 3  # rows: ceil((160-32)/(64-32)), cols: ceil((224-32)/64)
    assert all(t.image.size == (96, 64) for row in tiles for t in row)
    assert tiles[-1][-1].x + 96 == 224 and tiles[-1][-1].y + 64 == 160  # last tiles flush with the edges
    assert np.array_equal(np.asarray(m.combine_tiles(tiles, 224, 160, 32)), np.asarray(image))


def test_direction_and_fill_checks():
    with pytest.raises(ValueError, match="direction"):
        m.parse_directions(["sideways"])
    assert m.masked_content_index("latent noise") == 2


def picture() -> Image.Image:
    image = Image.new("RGB", (64, 64), (30, 60, 200))
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(220, 40, 40))
    return image


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, tiny_bundle):
    return tiny_runtime(tmp_path_factory.mktemp("outpaint"), tiny_bundle, REGISTRY)


def outpaint(runtime, title, args, **kw):
    defaults = dict(
        prompt="a red circle",
        steps=2,
        width=128,
        height=128,
        seed=4,
        sampler_name="Euler",
        init_images=[picture()],
        denoising_strength=0.8,
        script_name=title,
        script_args=args,
    )
    return runtime.img2img(GenerationJob(**{**defaults, **kw}))


def assert_original_kept(result_image, left, up, margin):
    out = np.asarray(result_image)[up + margin : up + 64 - margin, left + margin : left + 64 - margin]
    original = np.asarray(picture())[margin : 64 - margin, margin : 64 - margin]
    assert np.array_equal(out, original)


@pytest.mark.slow
def test_poor_mans_outpainting_grows_and_keeps_the_original(runtime):
    result = outpaint(runtime, "Poor man's outpainting", [32, 1, "original", ["left", "right", "up", "down"]])
    image = result.images[0]
    assert image.size == (128, 128) and len(result.images) == 1
    assert_original_kept(image, 32, 32, margin=8)
    border = np.asarray(image)[:16].astype(int)
    assert np.abs(border).sum() > 0  # the black border was painted
    saved = list((runtime.paths.outputs_dir / "img2img-images").rglob("*.png"))
    assert len(saved) == 1 and Image.open(saved[0]).size == (128, 128)


@pytest.mark.slow
def test_poor_mans_outpainting_in_tiles(runtime):
    # 64 px tiles overlapping by 32 over a 64x128 canvas: the top tile is all original and is not run.
    seen = []
    runtime.extensions.add_callback("cfg_denoiser", lambda step: seen.append(step.call_index))
    result = outpaint(runtime, "Poor man's outpainting", [32, 0, 1, ["down"]], width=64, height=64)
    runtime.extensions.callbacks["cfg_denoiser"].clear()
    assert seen.count(0) == 2  # two sampling runs: the middle and bottom tiles
    assert result.images[0].size == (64, 128)
    assert_original_kept(result.images[0], 0, 0, margin=4)


@pytest.mark.slow
def test_outpainting_mk2_grows_one_side_at_a_time(runtime):
    result = outpaint(runtime, "Outpainting mk2", [None, 32, 1, ["left", "right"], 1.0, 0.05])
    image = result.images[0]
    assert image.size == (128, 64)
    assert_original_kept(image, 32, 0, margin=16)  # mk2 blurs the mask 4x as much
    left_band = np.asarray(image)[:, :24].reshape(-1, 3)
    assert left_band.std(axis=0).max() > 1  # noise-filled and repainted, not flat black


def test_outpainting_mk2_pastes_without_a_strip_of_noise_and_uses_a_sharper_latent_mask():
    p = FakeContext(GenerationJob(width=128, height=64, init_images=[picture()]))
    m.expand_side(p, picture(), "left", 64, 8, 1.0, 0.05, seed=1)
    job = p.jobs[0]
    # A1111: the paste-back mask keeps the original from 64 + blur on, the latents from 64 + 2 x blur.
    assert np.asarray(job.mask)[0, 71:73].tolist() == [255, 0]
    assert np.asarray(job.latent_mask)[0, 79:81].tolist() == [255, 0]
    prepared = img2img.prepare(job, job.init_images[0])
    # The new 64 columns come back all generated: no share of the noise fill shows (was up to 40%).
    assert np.asarray(prepared.overlay_mask)[:, :64].min() == 255
    latents = img2img.latent_mask([prepared], (8, 16), round_mask=True)[0, 0]
    assert latents[0].tolist() == [1] * 10 + [0] * 6  # 80 px repainted in latents (72 by the mask)
