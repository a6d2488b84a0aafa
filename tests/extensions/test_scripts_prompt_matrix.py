"""Prompt matrix: 2^n combinations, joining, seeds, negative prompts, the labelled grid."""

from __future__ import annotations

import numpy as np
import pytest

from modules.infotext import parse_infotext
from modules.processing.job import GenerationJob

from .scripts_helpers import FakeContext, colour_of, load_scripts, module_of, script

MATRIX = script(load_scripts(("prompt_matrix",)), "Prompt matrix")
m = module_of(MATRIX)


@pytest.mark.parametrize(
    ("prompt", "kw", "expected"),
    [
        (
            "a city|illustration|cinematic",
            {},
            ["a city", "a city, illustration", "a city, cinematic", "a city, illustration, cinematic"],
        ),
        (
            "a city|illustration|cinematic",
            {"put_at_start": True},
            ["a city", "illustration, a city", "cinematic, a city", "illustration, cinematic, a city"],
        ),
        (
            "a city| illustration, |cinematic",
            {"delimiter": "space"},
            ["a city", "a city illustration", "a city cinematic", "a city illustration cinematic"],
        ),
        ("no bars", {}, ["no bars"]),
    ],
)
def test_combinations(prompt, kw, expected):
    assert m.combinations(prompt, **kw) == expected


@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_two_to_the_n_combinations(parts):
    prompt = "base|" + "|".join(f"p{i}" for i in range(parts))
    combos = m.combinations(prompt)
    assert len(combos) == 2**parts == len(set(combos))


def test_unknown_delimiter():
    with pytest.raises(ValueError, match="joining char"):
        m.combinations("a|b", delimiter="tab")


def context(**kw) -> FakeContext:
    defaults = dict(
        prompt="a city|illustration|cinematic",
        negative_prompt="ugly",
        steps=2,
        width=64,
        height=64,
        seed=-1,
        batch_size=2,
    )
    return FakeContext(GenerationJob(**{**defaults, **kw}))


def test_run_one_job_per_combination_same_seed():
    p = context()
    result = MATRIX.run(p)
    assert [j.prompt for j in p.jobs] == m.combinations("a city|illustration|cinematic")
    assert {j.seed for j in p.jobs} == {p.seed}
    assert all(j.batch_size == 1 and j.n_iter == 1 and j.negative_prompt == "ugly" for j in p.jobs)
    assert result.index_of_first_image == 1 and len(result.images) == 5
    assert result.prompts == [j.prompt for j in p.jobs]


def test_different_seeds_and_negative_prompt_type():
    p = context(negative_prompt="ugly|blurry|dark")
    MATRIX.run(p, False, True, "negative", "comma")
    assert [j.negative_prompt for j in p.jobs] == ["ugly", "ugly, blurry", "ugly, dark", "ugly, blurry, dark"]
    assert all(j.prompt == "a city|illustration|cinematic" for j in p.jobs)
    assert [j.seed - p.seed for j in p.jobs] == [0, 1, 2, 3]


def test_grid_layout_and_labels():
    p = context(prompt="base|a|b|c")
    result = MATRIX.run(p)
    grid = np.asarray(result.images[0])
    # 3 optional parts: 2 across (4 columns), 1 down (2 rows), label bands above and to the left.
    pad_left = 64 * 3 // 4
    pad_top = grid.shape[0] - 2 * 64
    assert grid.shape[1] == 4 * 64 + pad_left and pad_top > 0
    assert tuple(grid[pad_top + 64 + 32, pad_left + 3 * 64 + 32]) == colour_of(p.jobs[7])
    assert (grid[:pad_top, pad_left:] < 200).any()  # label text
    assert parse_infotext(result.infotexts[0])["Script"] == "Prompt matrix"
