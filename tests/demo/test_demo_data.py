"""The procedural data and the judge: captions, held-out split, rendering, and reading images back."""

from __future__ import annotations

import numpy as np
import pytest

from modules import demo_data


def test_held_out_pairs_never_appear_in_training_scenes():
    rng = np.random.default_rng(0)
    seen = {(s.colour, s.shape) for s in (demo_data.random_scene(rng) for _ in range(3000))}
    assert seen == set(demo_data.training_pairs())
    assert not seen & demo_data.HELD_OUT


def test_every_colour_and_shape_is_still_trained_somewhere():
    pairs = demo_data.training_pairs()
    assert {c for c, _ in pairs} == set(demo_data.COLOURS)
    assert {s for _, s in pairs} == set(demo_data.SHAPES)


def test_background_differs_from_shape_colour():
    rng = np.random.default_rng(1)
    assert all(s.colour != s.background for s in (demo_data.random_scene(rng) for _ in range(500)))


def test_caption_words():
    scene = demo_data.Scene("red", "circle", "blue", "top left", "small")
    assert scene.caption() == "a small red circle on a blue background, top left"
    assert scene.caption(with_size=False, with_position=False) == "a red circle on a blue background"


def test_render_is_seeded():
    scene = demo_data.Scene("green", "square", "white", "center", "large")
    first = demo_data.render(scene, np.random.default_rng(5))
    assert np.array_equal(first, demo_data.render(scene, np.random.default_rng(5)))
    assert not np.array_equal(first, demo_data.render(scene, np.random.default_rng(6)))


@pytest.mark.parametrize("colour", list(demo_data.COLOURS))
@pytest.mark.parametrize("shape", demo_data.SHAPES)
def test_judge_reads_rendered_scenes(colour, shape):
    rng = np.random.default_rng(list(demo_data.COLOURS).index(colour) * 10 + demo_data.SHAPES.index(shape))
    for position in demo_data.POSITIONS:
        for size in demo_data.SIZES:
            background = next(c for c in demo_data.COLOURS if c != colour)
            scene = demo_data.Scene(colour, shape, background, position, size)
            verdict = demo_data.judge(demo_data.render(scene, rng))
            assert verdict.matches(scene), (scene, verdict)
            assert verdict.position == position


def test_judge_reports_no_shape_on_a_plain_image():
    plain = np.full((64, 64, 3), demo_data.COLOURS["blue"], dtype=np.uint8)
    verdict = demo_data.judge(plain)
    assert (verdict.shape, verdict.background) == ("none", "blue")


def test_nearest_colour():
    assert demo_data.nearest_colour(np.array([200, 60, 50])) == "red"
    assert demo_data.nearest_colour(np.array([30, 30, 40])) == "black"
