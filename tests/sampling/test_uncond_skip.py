"""Calls without the negative prompt: CFG 1 (exact, always), A1111's NGMS and "Skip Early CFG"."""

from __future__ import annotations

import torch

from modules.processing.sampling_pass import uncond_skip_infotext
from modules.sampling.denoiser import CFGDenoiser, ComposableConditioning, UncondSkip
from tests.sampling.test_denoiser import RecordingModel, cond, scheduled


def single(value: float) -> ComposableConditioning:
    return ComposableConditioning(((scheduled((10, cond(value))), 1.0),))


def run(denoiser: CFGDenoiser, sigmas: list[float]) -> list[torch.Tensor]:
    return [denoiser(torch.zeros(1, 4, 2, 2), torch.tensor(s)) for s in sigmas]


def test_cfg_one_skips_the_negative_and_gives_the_guided_result():
    model = RecordingModel()
    denoiser = CFGDenoiser(model, [single(2.0)], [scheduled((10, cond(-3.0)))], cfg_scale=1.0, total_steps=10)
    (out,) = run(denoiser, [5.0])
    assert model.calls[0].x.shape[0] == 1  # the negative row is not computed
    assert torch.equal(out, torch.full_like(out, 2.0))  # -3 + 1 * (2 - -3)


def test_cfg_one_with_and_weights_not_summing_to_one_still_needs_the_negative():
    model = RecordingModel()
    conds = [ComposableConditioning(((scheduled((10, cond(1.0))), 1.0), (scheduled((10, cond(3.0))), 0.5)))]
    denoiser = CFGDenoiser(model, conds, [scheduled((10, cond(0.5)))], cfg_scale=1.0, total_steps=10)
    (out,) = run(denoiser, [5.0])
    assert model.calls[0].x.shape[0] == 3
    assert torch.allclose(out, torch.full_like(out, 0.5 + (1.0 - 0.5) + 0.5 * (3.0 - 0.5)))


def test_ngms_skips_every_other_call_below_the_sigma_with_the_first_part_as_negative():
    model = RecordingModel()
    denoiser = CFGDenoiser(
        model,
        [single(2.0)],
        [scheduled((10, cond(-3.0)))],
        cfg_scale=7.0,
        total_steps=4,
        uncond_skip=UncondSkip(s_min_uncond=1.0),
    )
    outs = run(denoiser, [3.0, 2.0, 0.5, 0.4])
    # A1111: odd calls only, and only below s_min_uncond: call 3 skips, call 1 (sigma 2) does not.
    assert [c.x.shape[0] for c in model.calls] == [2, 2, 2, 1]
    assert torch.equal(outs[3], torch.full_like(outs[3], 2.0))
    assert torch.allclose(outs[2], torch.full_like(outs[2], -3.0 + 7.0 * 5.0))


def test_ngms_all_steps_and_skip_early():
    model = RecordingModel()
    skip_all = UncondSkip(s_min_uncond=1.0, all_steps=True)
    denoiser = CFGDenoiser(model, [single(2.0)], [scheduled((10, cond(0.0)))], 7.0, 4, uncond_skip=skip_all)
    run(denoiser, [3.0, 2.0, 0.5, 0.4])
    assert [c.x.shape[0] for c in model.calls] == [2, 2, 1, 1]
    model = RecordingModel()
    early = UncondSkip(early=0.5)
    denoiser = CFGDenoiser(model, [single(2.0)], [scheduled((10, cond(0.0)))], 7.0, 4, uncond_skip=early)
    run(denoiser, [3.0, 2.0, 0.5, 0.4])
    assert [c.x.shape[0] for c in model.calls] == [1, 1, 1, 2]  # calls 0, 1, 2: index / 4 <= 0.5


def test_ngms_written_only_when_a_call_skipped():
    sigmas = torch.tensor([3.0, 2.0, 0.5, 0.4, 0.0])
    assert uncond_skip_infotext(UncondSkip(s_min_uncond=1.0), sigmas) == {"NGMS": 1.0}
    assert uncond_skip_infotext(UncondSkip(s_min_uncond=0.1), sigmas) == {}
    assert uncond_skip_infotext(UncondSkip(s_min_uncond=1.0, all_steps=True), sigmas) == {
        "NGMS": 1.0,
        "NGMS all steps": True,
    }
    assert uncond_skip_infotext(UncondSkip(early=0.25), sigmas) == {"Skip Early CFG": 0.25}
    assert uncond_skip_infotext(UncondSkip(), sigmas) == {}
