"""Prompt comments in a job: what a comment hides reaches neither the networks, the encoder nor the
parameters text; "Enable comments" off keeps the text as typed."""

from __future__ import annotations

import pytest
import torch

from modules.processing.hires import hires_prompts
from modules.processing.job import GenerationJob
from modules.sampling.denoiser import DenoiserHooks
from modules.styles import PromptStyle


def run(runtime, prompt, negative="", **kw):
    requested, seen = [], []
    original = runtime.scripts.activate_networks
    runtime.scripts.activate_networks = lambda p, calls: requested.append(calls) or original(p, calls)
    runtime.denoiser_hooks = DenoiserHooks(
        before_step=[lambda step: seen.append((step.text_cond[0][0], step.text_uncond[0]))]
    )
    result = runtime.txt2img(
        GenerationJob(
            prompt=prompt,
            negative_prompt=negative,
            steps=2,
            width=64,
            height=64,
            seed=3,
            sampler_name="Euler",
            do_not_save_samples=True,
            **kw,
        )
    )
    return result, requested, seen


# (prompt, comments on) -> (prompt the job uses, extra-network names requested)
JOBS = [
    ("red circle # <lora:hidden:1> blue", True, "red circle \n", []),
    ("red circle # <lora:hidden:1> blue", False, "red circle # <lora:hidden:1> blue", ["hidden"]),
    ("# note\nred <lora:shown:0.5> circle", True, "\nred <lora:shown:0.5> circle", ["shown"]),
]


@pytest.mark.parametrize(("prompt", "enabled", "expected", "networks"), JOBS)
def test_comments_in_a_job(runtime, prompt, enabled, expected, networks):
    result, requested, _ = run(runtime, prompt, override_settings={"enable_prompt_comments": enabled})
    assert result.prompts == [expected]
    assert result.infotexts[0].startswith(expected.strip())
    assert "#" not in result.infotexts[0] or not enabled
    assert [call.args[0] for call in requested[0][0]] == networks


def test_comments_reach_no_encoder(runtime):
    _, _, with_comment = run(runtime, "red circle # blue square", "dark # bright")
    _, _, plain = run(runtime, "red circle", "dark")
    assert torch.equal(with_comment[0][0], plain[0][0]) and torch.equal(with_comment[0][1], plain[0][1])


def test_styles_lose_their_comments_and_keep_the_prompts(runtime):
    runtime.styles.add(PromptStyle("S", "film grain # grainy", "blurry # soft"))
    result, _, _ = run(runtime, "red circle # a note", "dark # x", styles=["S"])
    assert result.prompts == ["red circle, film grain"]
    assert result.negative_prompts == ["dark, blurry"]


HIRES = [
    # (hr_prompt, hr_negative, comments on) -> hires prompts used
    ("blue # x", "grey # y", True, ("blue \n", "grey \n")),
    ("blue # x", "", False, ("blue # x", "")),
    ("", "", True, ("", "")),
]


@pytest.mark.parametrize(("hr_prompt", "hr_negative", "enabled", "expected"), HIRES)
def test_hires_prompts_lose_their_comments(hr_prompt, hr_negative, enabled, expected):
    job = GenerationJob(hr_prompt=hr_prompt, hr_negative_prompt=hr_negative)
    assert hires_prompts(job, {"enable_prompt_comments": enabled}) == expected
