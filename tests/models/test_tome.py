"""Token merging: the merge and unmerge maths, the patch scoped to one sampling pass, the ratio chosen
per pass as A1111 does and written to (and read from) the parameters text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modules import cmd_args
from modules.infotext import infotext_to_settings, parse_infotext
from modules.models.tome import bipartite_merge, token_merging
from modules.processing.job import GenerationJob
from modules.runtime import Runtime


@pytest.fixture
def runtime(tmp_path, tiny_bundle):
    rt = Runtime(cmd_args.parse(["--data-dir", str(tmp_path), "--device", "cpu"]))
    rt.model_loader = lambda: tiny_bundle
    yield rt
    rt.queue.close()


def cell_constant(batch: int, height: int, width: int, channels: int) -> torch.Tensor:
    """Tokens equal within every 2x2 cell: merging within cells loses nothing."""
    cells = torch.randn(batch, height // 2, width // 2, channels, generator=torch.Generator().manual_seed(0))
    return cells.repeat_interleave(2, 1).repeat_interleave(2, 2).reshape(batch, height * width, channels)


@pytest.mark.parametrize(("height", "width", "ratio"), [(8, 8, 0.5), (8, 8, 0.3), (9, 15, 0.5), (4, 6, 0.9)])
def test_merge_removes_r_tokens_and_unmerge_restores_the_count(height, width, ratio):
    x = torch.randn(2, height * width, 5, generator=torch.Generator().manual_seed(1))
    merge, unmerge = bipartite_merge(x, height, width, ratio)
    sources = height * width - (height // 2) * (width // 2)
    r = min(int(height * width * ratio), sources)
    merged = merge(x)
    assert merged.shape == (2, height * width - r, 5)
    assert unmerge(merged).shape == x.shape


def test_tokens_alike_within_cells_come_back_exactly():
    x = cell_constant(2, 8, 8, 6)
    merge, unmerge = bipartite_merge(x, 8, 8, 0.5)
    torch.testing.assert_close(unmerge(merge(x)), x)


def test_only_merged_tokens_and_their_destinations_change():
    x = torch.randn(1, 64, 4, generator=torch.Generator().manual_seed(2))
    merge, unmerge = bipartite_merge(x, 8, 8, 0.25)  # r = 16
    changed = (unmerge(merge(x)) - x).abs().amax(-1) > 1e-6
    assert 16 <= int(changed.sum()) <= 32  # every merged source, plus at most one destination each


def test_a_merged_destination_is_the_mean_of_itself_and_its_sources():
    x = torch.zeros(1, 16, 1)  # 4x4 tokens: destinations at 0, 2, 8, 10
    x[0, 0, 0], x[0, 1, 0] = 1.0, 3.0  # token 1 (a source) is closest in direction to destination 0...
    x[0, 2:, 0] = -1.0  # ...as every other token points the other way
    merge, unmerge = bipartite_merge(x + 1e-3, 4, 4, 1 / 16)  # r = 1
    out = unmerge(merge(x))
    assert out[0, 0, 0] == pytest.approx(2.0) and out[0, 1, 0] == pytest.approx(2.0)
    torch.testing.assert_close(out[0, 2:], x[0, 2:])


def test_the_patch_lasts_one_block_and_leaves_the_unet_as_it_was(tiny_bundle):
    unet = tiny_bundle.unet
    layers = {n: m for n, m in unet.named_modules() if n.endswith("attn1")}
    before = {n: m.processor for n, m in layers.items()}
    g = torch.Generator().manual_seed(3)
    x, context = (
        torch.randn(2, 4, 8, 8, generator=g),
        torch.randn(2, 77, unet.config.cross_attention_dim, generator=g),
    )
    t = torch.full((2,), 500.0)
    with torch.inference_mode():
        plain = unet(x, t, encoder_hidden_states=context).sample
        with token_merging(unet, 0.5):
            merged = unet(x, t, encoder_hidden_states=context).sample
        again = unet(x, t, encoder_hidden_states=context).sample
    assert {n: m.processor for n, m in layers.items()} == before
    assert torch.isfinite(merged).all() and not torch.equal(merged, plain)
    assert torch.equal(again, plain)


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].convert("RGB"), dtype=int)


def job(**kw) -> GenerationJob:
    values = dict(prompt="a red circle", steps=4, width=64, height=64, seed=5, sampler_name="Euler")
    return GenerationJob(**{**values, **kw})


def test_a_job_merges_tokens_by_its_setting_and_says_so(runtime):
    plain = runtime.txt2img(job())
    merged = runtime.txt2img(job(override_settings={"token_merging_ratio": 0.5}))
    after = runtime.txt2img(job())
    assert "Token merging ratio" not in plain.infotexts[0]
    assert "Token merging ratio: 0.5" in merged.infotexts[0]
    assert np.abs(pixels(merged) - pixels(plain)).max() > 0
    assert np.array_equal(pixels(after), pixels(plain))  # nothing stays patched after the job
    read = infotext_to_settings(parse_infotext(merged.infotexts[0]))
    assert read["override_settings"]["token_merging_ratio"] == 0.5


def test_the_hires_pass_has_its_own_ratio(runtime):
    hires = dict(enable_hr=True, hr_scale=2.0, hr_upscaler="Latent", denoising_strength=0.5)
    result = runtime.txt2img(job(**hires, override_settings={"token_merging_ratio_hr": 0.3}))
    text = result.infotexts[0]
    assert "Token merging ratio hr: 0.3" in text and "Token merging ratio: " not in text
    both = runtime.txt2img(job(**hires, override_settings={"token_merging_ratio": 0.5})).infotexts[0]
    assert "Token merging ratio: 0.5" in both and "Token merging ratio hr: 0.5" in both  # A1111 falls back


@pytest.mark.parametrize(
    ("settings", "overrides", "expected"),
    [
        ({"token_merging_ratio": 0.5, "token_merging_ratio_img2img": 0.0}, {}, 0.5),
        ({"token_merging_ratio": 0.5, "token_merging_ratio_img2img": 0.2}, {}, 0.2),
        ({"token_merging_ratio": 0.5, "token_merging_ratio_img2img": 0.2}, {"token_merging_ratio": 0.5}, 0.5),
    ],
)
def test_img2img_ratio_is_chosen_as_a1111_does(settings, overrides, expected):
    from modules.processing.sampling_pass import token_merging_ratio

    chosen = token_merging_ratio(
        GenerationJob(override_settings=overrides), {"token_merging_ratio_hr": 0.0, **settings},
        starts_from_image=True, is_hires=False,
    )  # fmt: skip
    assert chosen == expected
