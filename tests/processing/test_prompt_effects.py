"""Prompt schedules reach the denoiser at the right model calls; parameters texts reproduce images."""

from __future__ import annotations

import numpy as np
import torch

from modules.conditioning.text_model import inner_model
from modules.infotext import infotext_to_settings, parse_infotext
from modules.processing.job import GenerationJob
from modules.sampling.denoiser import DenoiserHooks


def conds_per_call(runtime, **kw) -> list[torch.Tensor]:
    seen = []
    runtime.denoiser_hooks = DenoiserHooks(before_step=[lambda step: seen.append(step.text_cond[0][0])])
    runtime.txt2img(GenerationJob(width=64, height=64, seed=5, do_not_save_samples=True, **kw))
    return seen


def switch_calls(seen: list[torch.Tensor]) -> list[int]:
    return [i for i in range(1, len(seen)) if not torch.equal(seen[i], seen[i - 1])]


def test_prompt_edit_switches_after_its_step(runtime):
    seen = conds_per_call(runtime, prompt="a [red:blue:0.5] circle", steps=10, sampler_name="Euler")
    assert len(seen) == 10
    assert switch_calls(seen) == [6]  # end step 5; A1111 counts calls from 0 and uses "red" while call <= 5


def test_absolute_step_edit(runtime):
    seen = conds_per_call(runtime, prompt="[red:blue:2]", steps=6, sampler_name="Euler")
    assert switch_calls(seen) == [3]


def test_second_order_samplers_schedule_over_model_calls(runtime):
    # Heun calls the model twice per step (the last step once); A1111 builds the schedule over 2 x steps.
    seen = conds_per_call(runtime, prompt="[red:blue:0.5]", steps=4, sampler_name="Heun")
    assert len(seen) == 7
    assert switch_calls(seen) == [5]  # end step int(0.5 * 8) = 4


def test_calls_past_the_schedule_fall_back_to_the_first_text(runtime):
    # DPM adaptive calls the model more often than the step count; A1111 then uses the FIRST entry
    # ("red"), not the last ("blue"), from call steps + 1 on.
    steps = 4
    seen = conds_per_call(runtime, prompt="[red:blue:0.5] circle", steps=steps, sampler_name="DPM adaptive")
    red, blue = seen[0], seen[3]
    assert len(seen) > steps + 2
    assert not torch.equal(red, blue)
    assert all(torch.equal(c, red) for c in seen[:3])  # calls 0..2: index <= end step 2
    assert all(torch.equal(c, blue) for c in seen[3 : steps + 1])  # calls 3, 4: end step 4
    assert all(torch.equal(c, red) for c in seen[steps + 1 :])


def test_alternation_changes_every_call(runtime):
    seen = conds_per_call(runtime, prompt="[red|blue] circle", steps=4, sampler_name="Euler")
    # entries (1, red) (2, blue) (3, red) (4, blue); calls 0 and 1 both take the first (A1111's off-by-one)
    assert switch_calls(seen) == [2, 3]


def test_each_distinct_text_is_encoded_once(runtime):
    calls = []
    token_embedding = inner_model(runtime.model().text_encoders[0]).embeddings.token_embedding
    original = token_embedding.forward
    token_embedding.forward = lambda ids: calls.append(ids.shape[0]) or original(ids)
    try:
        runtime.txt2img(
            GenerationJob(
                prompt="[red:blue:0.5] AND [green|yellow]",
                negative_prompt="dark",
                steps=8,
                width=64,
                height=64,
                batch_size=2,
                sampler_name="Euler",
                do_not_save_samples=True,
            )
        )
    finally:
        del token_embedding.forward
    # Distinct texts: red, blue (part 1, one batch), green, yellow (part 2, one batch), dark: each text's
    # chunks are embedded once, whatever the batch size and the number of steps.
    assert sum(calls) == 5


def test_parameters_text_reproduces_the_image(runtime):
    first = runtime.txt2img(
        GenerationJob(
            prompt="a (red:1.2) circle, [blue:green:3]",
            negative_prompt="grey",
            steps=6,
            cfg_scale=6.5,
            width=64,
            height=48,
            seed=4242,
            sampler_name="DPM++ 2M",
            scheduler="Karras",
            clip_skip=2,
            subseed=99,
            subseed_strength=0.3,
            do_not_save_samples=True,
        )
    )
    settings = infotext_to_settings(parse_infotext(first.infotexts[0]))
    overrides = settings.pop("override_settings", {})
    job = GenerationJob(
        **{k: v for k, v in settings.items() if k in GenerationJob.__dataclass_fields__},
        do_not_save_samples=True,
    )
    job.clip_skip = int(overrides.get("CLIP_stop_at_last_layers", job.clip_skip or 1))
    again = runtime.txt2img(job)
    assert again.infotexts[0] == first.infotexts[0]
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(first.images[0]))
