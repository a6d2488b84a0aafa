"""The colour measures that scripts/demo/evaluate.py (and the demo model's tests) read pictures with."""

from __future__ import annotations

import numpy as np
import pytest

from scripts.demo.evaluate import hue, redness, towards


def test_towards_places_a_colour_on_the_line_between_two_others():
    red, blue = np.array([220.0, 40, 40]), np.array([40.0, 70, 220])
    assert towards(red, red, blue) == 0 and towards(blue, red, blue) == 1
    assert towards((red + blue) / 2, red, blue) == pytest.approx(0.5)
    assert towards(red + (red - blue), red, blue) == pytest.approx(-1)  # beyond the first end


def test_hue_angles_of_the_primaries_and_redness():
    assert hue(np.array([200.0, 50, 50])) == pytest.approx(0)
    assert hue(np.array([50.0, 200, 50])) == pytest.approx(120)
    assert hue(np.array([50.0, 50, 200])) == pytest.approx(240)
    assert redness(np.array([200.0, 50, 30])) == 160
