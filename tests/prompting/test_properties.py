"""Property tests: any text parses; schedules are well formed; trees round-trip.

Speed is measured by bench/bench_prompt_worst_case.py, never asserted here."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modules.prompting import (
    Text,
    parse,
    parse_attention,
    prompt_schedule,
    split_and,
    to_source,
)
from modules.prompting.parser import parse as cached_parse

# text built from the characters that matter to the language, so that brackets, colons, numbers,
# pipes and escapes meet often
PROMPTISH = st.lists(st.sampled_from(list("[]():|\\ ab1.5\n-e") + [" BREAK ", " AND "]), max_size=60).map(
    "".join
)
ANY_TEXT = st.one_of(st.text(max_size=200), PROMPTISH)
NUMBERS = st.sampled_from(["1", "2", "0.5", ".25", "1.0", "0", "-1", " 3 ", "1e1", "1.5"])


@st.composite
def well_formed(draw, depth: int = 0) -> str:
    """A prompt whose every bracket is part of a construct (no stray brackets, no bad "|")."""
    words = st.sampled_from(["a", "cat", " ", "b c", "1", "\\(", "\\:", "x, y"])
    if depth >= 3 or draw(st.booleans()):
        return draw(words)
    body = lambda: "".join(draw(st.lists(well_formed(depth + 1), max_size=3)))  # noqa: E731
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return f"({body()})"
    if kind == 1:
        return f"({body()}:{body()})"
    if kind == 2:
        return f"[{body()}]"
    if kind == 3:
        return f"[{body()}:{body()}:{draw(NUMBERS)}]"
    if kind == 4:
        return f"[{body()}:{draw(NUMBERS)}]"
    return "[" + "|".join(body() for _ in range(draw(st.integers(2, 4)))) + "]"


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
def test_any_text_parses_and_round_trips(text):
    cached_parse.cache_clear()
    prompt = parse(text)
    if prompt.literal_fallback:
        assert prompt.nodes == (Text(text),)
    else:
        assert to_source(prompt) == text


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, st.integers(1, 40), st.one_of(st.none(), st.integers(1, 40)), st.booleans())
def test_schedule_end_steps_are_sorted_unique_and_end_at_steps(text, steps, hires_steps, old):
    schedule = prompt_schedule(text, steps, hires_steps, old)
    ends = [end for end, _ in schedule]
    pass_steps = hires_steps if hires_steps is not None and not old else steps
    assert ends == sorted(set(ends))
    assert ends[-1] == pass_steps
    assert ends[0] >= 1


@settings(max_examples=300, deadline=None)
@given(st.lists(well_formed(), min_size=1, max_size=4).map("".join), st.integers(1, 12))
def test_well_formed_prompts_never_fall_back(text, steps):
    prompt = parse(text)
    assert not prompt.literal_fallback
    assert to_source(prompt) == text
    assert len(prompt_schedule(text, steps)) <= steps


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="[]():|\\"), max_size=80), st.integers(1, 30))
def test_text_without_syntax_is_one_unchanged_entry(text, steps):
    assert prompt_schedule(text, steps) == [(steps, text)]
    assert parse(text).nodes == ((Text(text),) if text else ())


def _is_subsequence(part: str, whole: str) -> bool:
    remaining = iter(whole)
    return all(char in remaining for char in part)


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
def test_attention_never_raises_and_invents_no_text(text):
    chunks = parse_attention(text)
    assert chunks
    kept = "".join(chunk for chunk, weight in chunks if (chunk, weight) != ("BREAK", -1.0))
    assert _is_subsequence(kept, text)  # markup and whitespace around BREAK only disappear


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="[]():\\"), max_size=80))
def test_attention_of_plain_text_is_weight_one(text):
    assert all(weight in (1.0, -1.0) for _, weight in parse_attention(text))


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT)
def test_and_split_parts_come_from_the_text(text):
    parts = split_and(text)
    assert all(part.text in text and isinstance(part.weight, float) for part in parts)
    if "AND" not in text:
        assert len(parts) == 1 and text.startswith(parts[0].text)
