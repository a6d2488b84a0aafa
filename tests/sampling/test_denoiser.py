"""The CFG denoiser: per-call conditioning, one batched model call, AND weights, CFG, padding masks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from modules.sampling.denoiser import (
    CFGDenoiser,
    ComposableConditioning,
    ScheduledConditioning,
    UNetApply,
    pad_and_stack,
)


def cond(value: float, tokens: int = 77, dim: int = 4) -> SimpleNamespace:
    return SimpleNamespace(tokens=torch.full((1, tokens, dim), value), pooled=None)


def scheduled(*entries) -> ScheduledConditioning:
    return ScheduledConditioning(tuple(entries))


def test_schedule_entry_in_force_per_call():
    a, b = cond(1.0), cond(2.0)
    schedule = scheduled((1, a), (3, b))
    # A1111: call index <= end step; "[a:b:1]" keeps "a" for calls 0 and 1; a call past the last end
    # step (DPM adaptive, PLMS/UniPC/DDIM at some step counts) falls back to the FIRST entry.
    assert [schedule.at_call(i) for i in range(6)] == [a, a, b, b, a, a]


def test_denoiser_and_prompting_share_one_rule_for_the_call():
    from modules.prompting import index_at_call

    conds = [cond(float(i)) for i in range(3)]
    ends = (2, 5, 9)
    schedule = scheduled(*zip(ends, conds, strict=True))
    for call in range(14):
        assert schedule.at_call(call) is conds[index_at_call(schedule.entries, call)]


class RecordingModel:
    """Returns, per batch row, the row's conditioning value (so the CFG maths is easy to check)."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, sigma, *, cond, cond_mask, pooled, **_):
        self.calls.append(SimpleNamespace(x=x, sigma=sigma, cond=cond, mask=cond_mask))
        return cond[:, 0, 0].reshape(-1, 1, 1, 1).expand_as(x).clone()


def test_one_model_call_per_step_with_and_parts_and_cfg_weights():
    model = RecordingModel()
    conds = [
        ComposableConditioning(((scheduled((10, cond(1.0))), 1.0), (scheduled((10, cond(3.0))), 0.5))),
        ComposableConditioning(((scheduled((10, cond(5.0))), 1.0),)),
    ]
    unconds = [scheduled((10, cond(0.5))), scheduled((10, cond(-1.0)))]
    denoiser = CFGDenoiser(model, conds, unconds, cfg_scale=7.0, total_steps=10)
    x = torch.zeros(2, 4, 2, 2)
    out = denoiser(x, torch.tensor(3.0))
    assert len(model.calls) == 1 and denoiser.unet_calls == 1
    assert model.calls[0].x.shape[0] == 5  # 3 AND parts + 2 negatives, one batch
    assert model.calls[0].cond[:, 0, 0].tolist() == [1.0, 3.0, 5.0, 0.5, -1.0]
    expected0 = 0.5 + 7.0 * (1.0 * (1.0 - 0.5) + 0.5 * (3.0 - 0.5))
    expected1 = -1.0 + 7.0 * (5.0 - -1.0)
    assert torch.allclose(out[0], torch.full_like(out[0], expected0))
    assert torch.allclose(out[1], torch.full_like(out[1], expected1))


def test_scheduled_conditioning_switches_at_the_right_call():
    model = RecordingModel()
    conds = [ComposableConditioning(((scheduled((2, cond(1.0)), (4, cond(2.0))), 1.0),))]
    denoiser = CFGDenoiser(model, conds, [scheduled((4, cond(0.0)))], cfg_scale=1.0, total_steps=4)
    for _ in range(5):
        denoiser(torch.zeros(1, 4, 2, 2), torch.tensor(1.0))
    assert [c.cond[0, 0, 0].item() for c in model.calls] == [1.0, 1.0, 1.0, 2.0, 2.0]


def test_interrupt_raises_between_calls():
    from modules.sampling.denoiser import SamplingInterrupted

    stop = {"now": False}
    denoiser = CFGDenoiser(
        RecordingModel(),
        [ComposableConditioning(((scheduled((1, cond(1.0))), 1.0),))],
        [scheduled((1, cond(0.0)))],
        1.0,
        1,
        should_stop=lambda: stop["now"],
    )
    denoiser(torch.zeros(1, 4, 2, 2), torch.tensor(1.0))
    stop["now"] = True
    with pytest.raises(SamplingInterrupted):
        denoiser(torch.zeros(1, 4, 2, 2), torch.tensor(1.0))


def test_different_token_lengths_are_padded_with_a_mask():
    stacked, mask = pad_and_stack([torch.ones(154, 4), torch.ones(77, 4)])
    assert stacked.shape == (2, 154, 4)
    assert mask[0].all() and mask[1, :77].all() and not mask[1, 77:].any()
    assert pad_and_stack([torch.ones(77, 4), torch.ones(77, 4)])[1] is None


def test_masked_batch_equals_separate_unpadded_calls(tiny_bundle):
    """Padding + cross-attention mask must give what running each conditioning alone gives."""
    unet = UNetApply(tiny_bundle)
    torch.manual_seed(0)
    long, short = torch.randn(154, 32), torch.randn(77, 32)
    x = torch.randn(2, 4, 8, 8)
    t = torch.tensor([500.0, 500.0])
    batched_cond, mask = pad_and_stack([long, short])
    with torch.no_grad():
        batched = unet(x, t, cond=batched_cond, cond_mask=mask)
        alone_long = unet(x[:1], t[:1], cond=long[None])
        alone_short = unet(x[1:], t[1:], cond=short[None])
    assert torch.allclose(batched[0], alone_long[0], atol=1e-5)
    assert torch.allclose(batched[1], alone_short[0], atol=1e-5)


def ramp(tokens: int, start: float) -> SimpleNamespace:
    """A conditioning whose token i holds start + i, so padding by repetition is visible."""
    values = start + torch.arange(tokens, dtype=torch.float32)
    return SimpleNamespace(tokens=values.reshape(1, tokens, 1).expand(1, tokens, 4).clone(), pooled=None)


# (positive lengths, negative lengths) -> (rows' last real token value repeated up to the longest
# positive / negative, mask present): A1111 repeats the last vector among positives (stack_conds);
# a negative of another length runs in its own UNet call there, which the mask reproduces.
AND_LENGTHS = [
    ((77, 154), (77,), True),
    ((154, 77), (154,), False),
    ((77, 77), (77,), False),
    ((77, 231), (231,), False),
]


@pytest.mark.parametrize(("positives", "negatives", "masked"), AND_LENGTHS)
def test_and_parts_of_different_lengths_repeat_their_last_vector(positives, negatives, masked):
    model = RecordingModel()
    parts = tuple((scheduled((4, ramp(n, 100.0 * i))), 1.0) for i, n in enumerate(positives))
    unconds = [scheduled((4, ramp(n, -1000.0))) for n in negatives]
    CFGDenoiser(model, [ComposableConditioning(parts)], unconds, 7.0, 4)(
        torch.zeros(1, 4, 2, 2), torch.tensor(1.0)
    )
    call = model.calls[0]
    longest_positive = max(positives)
    for row, n in enumerate(positives):
        values = call.cond[row, :, 0]
        expected = torch.cat(
            [100.0 * row + torch.arange(n), torch.full((longest_positive - n,), 100.0 * row + n - 1)]
        )
        assert torch.equal(values[:longest_positive], expected)
    assert (call.mask is not None) == masked
    if masked:
        assert call.mask[: len(positives), :longest_positive].all()
        assert not call.mask[len(positives) :, negatives[0] :].any()
