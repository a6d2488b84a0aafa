"""Emphasis weights: A1111's parse_prompt_attention, result for result and float for float.

This is a second, separate little language read from each schedule text (and from negative
prompts): round and square brackets keep independent stacks in A1111, so ``([a)b]`` is legal and
weights ``a`` by 1.1/1.1 and ``b`` by 1/1.1. Crossing brackets have no tree, so this is a token
stream and a stack machine, not a grammar. Multiplications happen in A1111's order (each closing
bracket multiplies everything since its opening bracket; unclosed round brackets, then unclosed
square ones, apply to the end) so the weights are bit-identical and equal weights merge the same.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
BREAK = ("BREAK", -1.0)

# A1111's token classes in its order. One deliberate difference: A1111 accepts any run of digits
# and dots as a weight (`:1.2.3)`) and then crashes in float(); here a weight must be a number, so
# `(a:1.2.3)` reads like `(a:b)` (the colon and the text are literal, ")" closes with 1.1). Where
# A1111 does not crash the results are the same.
_TOKEN = re.compile(
    r"""
    (?P<escaped>\\[()\[\]\\])           # \( \) \[ \] \\ : the character itself
    | (?P<backslash>\\)                 # a lone backslash: empty text
    | (?P<open>[(\[])
    | :\s*(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\)   # (text:1.5) closes a round bracket
    | (?P<close>[)\]])
    | (?P<text>[^\\()\[\]:]+)
    | (?P<colon>:)
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def _append_text(chunks: list[list], text: str) -> None:
    for index, part in enumerate(_BREAK.split(text)):
        if index:
            chunks.append(list(BREAK))
        chunks.append([part, 1.0])


def _multiply_from(chunks: list[list], start: int, multiplier: float) -> None:
    for chunk in chunks[start:]:
        chunk[1] *= multiplier


def _multiply_from_each(chunks: list[list], starts: list[int], multiplier: float) -> None:
    """``_multiply_from(chunks, start, multiplier)`` for each start in turn, in about linear time.

    Chunk i is multiplied once per start <= i, one multiplication after the other as in A1111;
    the successive products of a weight are computed once per distinct weight and shared, so 500
    unclosed brackets do not cost 500 passes over the chunks.
    """
    products: dict[tuple[float, float], list[float]] = {}
    for index, chunk in enumerate(chunks):
        times = bisect_right(starts, index)
        if times:
            # keyed with the sign too: 0.0 == -0.0, but their products differ in sign
            chain = products.setdefault((chunk[1], math.copysign(1.0, chunk[1])), [chunk[1]])
            while len(chain) <= times:
                chain.append(chain[-1] * multiplier)
            chunk[1] = chain[times]


def _merge_equal_neighbours(chunks: list[list]) -> list[tuple[str, float]]:
    merged: list[list] = []
    for chunk in chunks:
        if merged and merged[-1][1] == chunk[1]:
            merged[-1][0] += chunk[0]
        else:
            merged.append(chunk)
    return [(text, weight) for text, weight in merged]


def parse_attention(text: str) -> list[tuple[str, float]]:
    """``[(text, weight), ...]`` with ``("BREAK", -1.0)`` markers; ``[("", 1.0)]`` for empty text.

    As in A1111: an unclosed bracket weights everything after it, an unmatched closing bracket is
    text, a colon not followed by a number and ")" is text, a lone backslash vanishes, and BREAK
    inside brackets is weighted like the text around it (so it is no longer (BREAK, -1)).
    """
    chunks: list[list] = []  # [text, weight], mutable while brackets close
    round_starts: list[int] = []
    square_starts: list[int] = []
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup, match.group()
        if kind == "escaped":
            chunks.append([value[1], 1.0])
        elif kind == "backslash":
            chunks.append(["", 1.0])
        elif kind == "open":
            (round_starts if value == "(" else square_starts).append(len(chunks))
        elif kind == "weight" and round_starts:
            _multiply_from(chunks, round_starts.pop(), float(match.group("weight")))
        elif value == ")" and round_starts:
            _multiply_from(chunks, round_starts.pop(), ROUND_MULTIPLIER)
        elif value == "]" and square_starts:
            _multiply_from(chunks, square_starts.pop(), SQUARE_MULTIPLIER)
        else:
            _append_text(chunks, value)
    _multiply_from_each(chunks, round_starts, ROUND_MULTIPLIER)
    _multiply_from_each(chunks, square_starts, SQUARE_MULTIPLIER)
    return _merge_equal_neighbours(chunks) if chunks else [("", 1.0)]
