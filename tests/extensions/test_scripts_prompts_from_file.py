"""Prompts from file or textbox: line parsing (A1111's options) and per-line jobs and seeds."""

from __future__ import annotations

import pytest

from modules.processing.job import GenerationJob

from .scripts_helpers import FakeContext, load_scripts, module_of, script

PROMPTS = script(load_scripts(("prompts_from_file",)), "Prompts from file or textbox")
m = module_of(PROMPTS)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '--prompt "a cat" --negative_prompt "ugly, blurry" --steps 10 --seed 5',
            {"prompt": "a cat", "negative_prompt": "ugly, blurry", "steps": 10, "seed": 5},
        ),
        ("--prompt a cat in a hat --cfg_scale 4.5", {"prompt": "a cat in a hat", "cfg_scale": 4.5}),
        (
            '--sampler_name "Euler a" --width 96 --height 64 --n_iter 2 --batch_size 3',
            {"sampler_name": "Euler a", "width": 96, "height": 64, "n_iter": 2, "batch_size": 3},
        ),
        ("--do_not_save_samples true --tiling True", {"do_not_save_samples": True, "tiling": False}),
        (
            "--subseed 7 --subseed_strength 0.25 --styles a,b",
            {"subseed": 7, "subseed_strength": 0.25, "styles": "a,b"},
        ),
    ],
)
def test_parse_line(line, expected):
    assert m.parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "message"), [("--bogus 1", "unknown"), ("--steps", "missing"), ("steps 5", "--")]
)
def test_parse_line_errors(line, message):
    with pytest.raises(ValueError, match=message):
        m.parse_line(line)


def test_parse_lines_plain_and_broken_lines():
    text = "a plain prompt\n\n  --prompt x --steps 3\n--bogus 1 -- not options\n"
    assert m.parse_lines(text) == [
        {"prompt": "a plain prompt"},
        {"prompt": "x", "steps": 3},
        {"prompt": "--bogus 1 -- not options"},
    ]


def context(**kw) -> FakeContext:
    defaults = dict(prompt="", negative_prompt="", steps=2, width=64, height=64, seed=-1)
    return FakeContext(GenerationJob(**{**defaults, **kw}))


def test_per_line_settings():
    p = context(prompt="", cfg_scale=7.0)
    text = 'a dog\n--prompt "a cat" --steps 3 --seed 42 --sampler_name k_euler_a --scheduler karras\n--cfg_scale 2'
    result = PROMPTS.run(p, False, False, "start", text)
    first, second, third = p.jobs
    assert (first.prompt, first.steps, first.seed) == ("a dog", 2, -1)  # no seed option: each line draws
    assert (second.prompt, second.steps, second.seed, second.sampler_name, second.scheduler) == (
        "a cat",
        3,
        42,
        "Euler a",
        "Karras",
    )
    assert (third.prompt, third.cfg_scale) == ("", 2.0)
    assert len(result.images) == 3 and result.prompts == ["a dog", "a cat", ""]
    assert all(j.script_name is None and j.do_not_save_grid for j in p.jobs)


def test_prompt_position():
    p = context(prompt="masterpiece", negative_prompt="ugly")
    PROMPTS.run(p, False, False, "start", '--prompt "a cat" --negative_prompt blurry')
    PROMPTS.run(p, False, False, "end", '--prompt "a cat" --negative_prompt blurry')
    assert [(j.prompt, j.negative_prompt) for j in p.jobs] == [
        ("a cat masterpiece", "blurry ugly"),
        ("masterpiece a cat", "ugly blurry"),
    ]


def test_iterate_seed_every_line_and_same_seed():
    p = context(batch_size=2, n_iter=3)
    PROMPTS.run(p, True, False, "start", "a\nb\nc")
    assert [j.seed - p.seed for j in p.jobs] == [0, 6, 12]  # steps by the job's batch_size * n_iter
    p = context()
    PROMPTS.run(p, False, True, "start", "a\nb")
    assert [j.seed for j in p.jobs] == [p.seed, p.seed]


def test_unknown_sampler_fails():
    with pytest.raises(ValueError, match="unknown sampler"):
        PROMPTS.run(context(), False, False, "start", "--sampler_name nope")
