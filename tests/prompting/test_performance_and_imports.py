"""No exponential blow-ups on pathological prompts (A1111 takes seconds on these); no torch import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modules.prompting import parse_attention, prompt_schedule
from modules.prompting.parser import parse

PATHOLOGICAL = {
    "500 unclosed [": "[" * 500 + "a",
    "500 unclosed (": "(" * 500 + "a",
    "500 words each after an unclosed [": "a [" * 500,
    "500 words each after an unclosed (": "a (" * 500,
    "deeply nested": "(" * 1000 + "a" + ")" * 1000,
    "nested edits": "[a:" * 300 + "b" + ":0.5]" * 300,
    "2,000 characters": ("a photo of a (cat:1.2) on a [red:blue:0.4] sofa, ((soft light)), [blurry], " * 30)[
        :2000
    ],
    "500 stray closers": "a) b] " * 500,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_prompt_parses(text):
    # Timing lives in bench/bench_prompt_worst_case.py; here: it parses, schedules and weighs.
    parse.cache_clear()
    schedule = prompt_schedule(text, 20)
    assert schedule[-1][0] == 20
    for _, scheduled in schedule:
        assert parse_attention(scheduled)


def test_prompting_does_not_import_torch():
    code = "import sys, modules.prompting; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
