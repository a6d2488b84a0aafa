"""AND: composable sub-prompts with weights (A1111's get_multicond_prompt_list, one prompt at a time).

A1111 splits the raw text before any parsing, so an AND inside brackets splits too; negative
prompts are never split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_AND = re.compile(r"\bAND\b")
# A1111 1.x's pattern: the text (newlines included) lazily, then an optional ":weight" with the
# whitespace before the colon and at the end left out of the text.
_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


@dataclass(frozen=True)
class WeightedPrompt:
    """One AND sub-prompt and its weight in the composed noise prediction."""

    text: str
    weight: float


def split_and(text: str) -> list[WeightedPrompt]:
    """The AND sub-prompts of a positive prompt, each with its ``:weight`` (default 1.0) split off."""
    parts = []
    for sub_prompt in _AND.split(text):
        sub_text, weight = _WEIGHT.match(sub_prompt).groups()
        parts.append(WeightedPrompt(sub_text, float(weight) if weight is not None else 1.0))
    return parts
