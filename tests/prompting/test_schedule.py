"""Prompt schedules against A1111 1.x: every expected value below is what A1111's own
get_learned_conditioning_prompt_schedules (lark 1.1.2) returned for the case, under 8 hash seeds."""

from __future__ import annotations

import pytest

from modules.prompting import index_at_call, prompt_schedule, text_at_call

# ((prompt, steps, hires_steps, use_old_scheduling), schedule)
A1111_SCHEDULES = [
    (("test", 10, None, False), [(10, "test")]),
    (("", 10, None, False), [(10, "")]),
    (("a [b:3]", 10, None, False), [(3, "a "), (10, "a b")]),
    (("a [b: 3]", 10, None, False), [(3, "a "), (10, "a b")]),
    (("a [[[b]]:2]", 10, None, False), [(2, "a "), (10, "a [[b]]")]),
    (("[(a:2):3]", 10, None, False), [(3, ""), (10, "(a:2)")]),
    (("a [b : c : 1] d", 10, None, False), [(1, "a b  d"), (10, "a  c  d")]),
    (("a[b:[c:d:2]:1]e", 10, None, False), [(1, "abe"), (2, "ace"), (10, "ade")]),
    (("a [unbalanced", 10, None, False), [(10, "a [unbalanced")]),
    (("a [b:.5] c", 10, None, False), [(5, "a  c"), (10, "a b c")]),
    (("((a][:b:c [d:3]", 10, None, False), [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    (
        ("[a|(b:1.1)]", 10, None, False),
        [
            (1, "a"),
            (2, "(b:1.1)"),
            (3, "a"),
            (4, "(b:1.1)"),
            (5, "a"),
            (6, "(b:1.1)"),
            (7, "a"),
            (8, "(b:1.1)"),
            (9, "a"),
            (10, "(b:1.1)"),
        ],
    ),
    (
        ("[fe|]male", 10, None, False),
        [
            (1, "female"),
            (2, "male"),
            (3, "female"),
            (4, "male"),
            (5, "female"),
            (6, "male"),
            (7, "female"),
            (8, "male"),
            (9, "female"),
            (10, "male"),
        ],
    ),
    (
        ("[fe|||]male", 10, None, False),
        [
            (1, "female"),
            (2, "male"),
            (3, "male"),
            (4, "male"),
            (5, "female"),
            (6, "male"),
            (7, "male"),
            (8, "male"),
            (9, "female"),
            (10, "male"),
        ],
    ),
    (("a [b:.5] c", 10, 10, False), [(10, "a b c")]),
    (("a [b:1.5] c", 10, 10, False), [(5, "a  c"), (10, "a b c")]),
    (
        (
            "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75][ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]",
            100,
            None,
            False,
        ),
        [
            (25, "fantasy landscape with a mountain and an oak in foreground shoddy"),
            (50, "fantasy landscape with a lake and an oak in foreground in background shoddy"),
            (60, "fantasy landscape with a lake and an oak in foreground in background masterful"),
            (75, "fantasy landscape with a lake and an oak in background masterful"),
            (100, "fantasy landscape with a lake and a christmas tree in background masterful"),
        ],
    ),
    (("[a:b:1.0]", 10, None, False), [(10, "a")]),
    (("[a:b:1]", 10, None, False), [(1, "a"), (10, "b")]),
    (("[a:b:0]", 10, None, False), [(10, "b")]),
    (("[a:b:0.0]", 10, None, False), [(10, "b")]),
    (("[a:b:-1]", 10, None, False), [(10, "b")]),
    (("[a:b:-0.5]", 10, None, False), [(10, "b")]),
    (("[a:b:+.5]", 10, None, False), [(5, "a"), (10, "b")]),
    (("[a:b:1e1]", 10, None, False), [(10, "a")]),
    (("[a:b:5e-1]", 10, None, False), [(10, "b")]),
    (("[a:b:.5e1]", 10, None, False), [(10, "a")]),
    (("[a:b:1.]", 10, None, False), [(10, "a")]),
    (("[a:b:15]", 10, None, False), [(10, "a")]),
    (("[a:b:0.29]", 100, None, False), [(28, "a"), (100, "b")]),
    (("[a:b:0.3]", 10, None, False), [(3, "a"), (10, "b")]),
    (("[a:b: 2 ]", 10, None, False), [(2, "a"), (10, "b")]),
    (("[a:b:\t2\n]", 10, None, False), [(2, "a"), (10, "b")]),
    (("[a:b:2x]", 10, None, False), [(10, "[a:b:2x]")]),
    (("[a:b:1.5.3]", 10, None, False), [(10, "[a:b:1.5.3]")]),
    (("[a:b:1e]", 10, None, False), [(10, "[a:b:1e]")]),
    (("[a:b:\\2]", 10, None, False), [(10, "[a:b:\\2]")]),
    (("[a:b:c]", 10, None, False), [(10, "[a:b:c]")]),
    (("[a:b:c:1]", 10, None, False), [(10, "[a:b:c:1]")]),
    (("[a::3]", 10, None, False), [(3, "a"), (10, "")]),
    (("[:a:3]", 10, None, False), [(3, ""), (10, "a")]),
    (("[::3]", 10, None, False), [(3, ""), (10, "")]),
    (("[:3]", 10, None, False), [(3, ""), (10, "")]),
    (("[a:3]", 10, None, False), [(3, ""), (10, "a")]),
    (("[a:b:(c):3]", 10, None, False), [(10, "[a:b:(c):3]")]),
    (("[a:(b):3]", 10, None, False), [(3, "a"), (10, "(b)")]),
    (("[a:b:[c]:3]", 10, None, False), [(10, "[a:b:[c]:3]")]),
    (("[[a:b:3]:c:5]", 10, None, False), [(3, "a"), (5, "b"), (10, "c")]),
    (("[a:[b:c:7]:3]", 10, None, False), [(3, "a"), (7, "b"), (10, "c")]),
    (("[a|b]", 4, None, False), [(1, "a"), (2, "b"), (3, "a"), (4, "b")]),
    (("[a|b|c]", 7, None, False), [(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "b"), (6, "c"), (7, "a")]),
    (("[|]", 3, None, False), [(1, ""), (2, ""), (3, "")]),
    (("[a|]", 3, None, False), [(1, "a"), (2, ""), (3, "a")]),
    (("[a|[b|c]]", 6, None, False), [(1, "a"), (2, "c"), (3, "a"), (4, "c"), (5, "a"), (6, "c")]),
    (("[a|[b:c:3]]", 6, None, False), [(1, "a"), (2, "b"), (3, "a"), (4, "c"), (5, "a"), (6, "c")]),
    (("[[a|b]:c:3]", 6, None, False), [(1, "a"), (2, "b"), (3, "a"), (4, "c"), (5, "c"), (6, "c")]),
    (("([a|b]:1.2)", 4, None, False), [(1, "(a:1.2)"), (2, "(b:1.2)"), (3, "(a:1.2)"), (4, "(b:1.2)")]),
    (("[a|b:c]", 4, None, False), [(4, "[a|b:c]")]),
    (("[a:b|c:2]", 4, None, False), [(4, "[a:b|c:2]")]),
    (("a|b", 4, None, False), [(4, "a|b")]),
    (("(a|b)", 4, None, False), [(4, "(a|b)")]),
    (("[a|b", 4, None, False), [(4, "[a|b")]),
    (("a \\| b [c:d:2]", 4, None, False), [(2, "a \\| b c"), (4, "a \\| b d")]),
    (("a\\", 4, None, False), [(4, "a\\")]),
    (("a\\\n[b:c:2]", 4, None, False), [(4, "a\\\n[b:c:2]")]),
    (("a\\\\ [b:c:2]", 4, None, False), [(2, "a\\\\ b"), (4, "a\\\\ c")]),
    (("\\[a:b:2]", 4, None, False), [(4, "\\[a:b:2]")]),
    (("[a:b\\]:2]", 4, None, False), [(2, "a"), (4, "b\\]")]),
    (("[a\\:b:2]", 4, None, False), [(2, ""), (4, "a\\:b")]),
    (("(a:1.2) [b:c:2]", 4, None, False), [(2, "(a:1.2) b"), (4, "(a:1.2) c")]),
    (("(a:b:c) [d:e:2]", 4, None, False), [(2, "(a:b:c) d"), (4, "(a:b:c) e")]),
    (("(a [b:c:2]", 4, None, False), [(2, "(a b"), (4, "(a c")]),
    (("[a (b:c:2] d)", 4, None, False), [(4, "[a (b:c:2] d)")]),
    (("(a) ]", 4, None, False), [(4, "(a) ]")]),
    (("]] [a:b:2] ((", 4, None, False), [(2, "]] a (("), (4, "]] b ((")]),
    (("[x [a:b] y]", 4, None, False), [(4, "[x [a:b] y]")]),
    (("x [a:b:1] : y", 4, None, False), [(1, "x a : y"), (4, "x b : y")]),
    (("[a:b:1] ]", 4, None, False), [(1, "a ]"), (4, "b ]")]),
    (("[a:b:1]x]", 4, None, False), [(1, "ax]"), (4, "bx]")]),
    (("x][a:b:1]", 4, None, False), [(1, "x]a"), (4, "x]b")]),
    (("[a:b:1] (", 4, None, False), [(1, "a ("), (4, "b (")]),
    (("[a:b:1.5]", 10, 20, False), [(10, "a"), (20, "b")]),
    (("[a:b:12]", 10, 20, False), [(2, "a"), (20, "b")]),
    (("[a:b:5]", 10, 20, False), [(20, "b")]),
    (("[a:b:0.5]", 10, 20, False), [(20, "b")]),
    (("[a:b:1.0]", 10, 20, False), [(20, "b")]),
    (("[a:b:2.0]", 10, 20, False), [(20, "a")]),
    (("[a:b:35]", 10, 20, False), [(20, "a")]),
    (("[a|b]", 10, 3, False), [(1, "a"), (2, "b"), (3, "a")]),
    (("[a:b:0.5]", 10, None, True), [(5, "a"), (10, "b")]),
    (("[a:b:1.0]", 10, None, True), [(1, "a"), (10, "b")]),
    (("[a:b:1]", 10, None, True), [(1, "a"), (10, "b")]),
    (("[a:b:3]", 10, None, True), [(3, "a"), (10, "b")]),
    (("[a:b:0.5]", 10, 20, True), [(5, "a"), (10, "b")]),
    (("[a:b:1.5]", 10, 20, True), [(1, "a"), (10, "b")]),
    (("[a:b:12]", 10, 20, True), [(10, "a")]),
]


@pytest.mark.parametrize(("case", "expected"), A1111_SCHEDULES, ids=[repr(c[0]) for c, _ in A1111_SCHEDULES])
def test_schedule_matches_a1111(case, expected):
    text, steps, hires_steps, old = case
    assert prompt_schedule(text, steps, hires_steps, use_old_scheduling=old) == expected


# A1111 resolves these with Python's per-process string hash order, so each launch of A1111 may give
# either reading (listed from its runs under different seeds); we always take the construct.
AMBIGUOUS_IN_A1111 = [
    ("[a:[b:3]]", 10, [(10, "[a:[b:3]]")], [(3, "[a:]"), (10, "[a:b]")]),
    ("[a:b:1]]", 4, [(4, "[a:b:1]]")], [(1, "a]"), (4, "b]")]),
    ("[a:b:1](", 4, [(4, "[a:b:1](")], [(1, "a("), (4, "b(")]),
    ("[a:b:1]:[c:d:2]", 4, [(2, "[a:b:1]:c"), (4, "[a:b:1]:d")], [(1, "a:c"), (2, "b:c"), (4, "b:d")]),
]


@pytest.mark.parametrize(("text", "steps", "literal_reading", "construct_reading"), AMBIGUOUS_IN_A1111)
def test_ambiguous_prompts_take_the_construct(text, steps, literal_reading, construct_reading):
    assert prompt_schedule(text, steps) == construct_reading
    assert construct_reading != literal_reading


@pytest.mark.parametrize(
    ("number", "expected"),
    [("1e400", [(10, "a")]), ("-1e400", [(10, "b")]), ("1e309", [(10, "a")])],
)
def test_overflowing_numbers_do_not_raise(number, expected):
    # A1111 raises OverflowError here; "1e400" is read as "never switch", "-1e400" as "from the start"
    assert prompt_schedule(f"[a:b:{number}]", 10) == expected


def test_old_scheduling_ignores_the_hires_steps():
    assert prompt_schedule("[a:b:0.5]", 10, 30, use_old_scheduling=True) == prompt_schedule("[a:b:0.5]", 10)


def test_zero_steps_is_a_single_entry():
    # A1111 (checked): the edit's step is 0, so "before"; the alternation picks option (0 - 1) % 2
    assert prompt_schedule("[a:b:0.5] [c|d]", 0) == [(0, "a d")]


# (schedule end steps, call index, index A1111's denoiser uses)
CALLS = [
    ([1, 10], 0, 0),
    ([1, 10], 1, 0),  # "[a:b:1]" keeps "a" for call 1 too: the first entry with call <= end step
    ([1, 10], 2, 1),
    ([1, 10], 10, 1),
    ([1, 10], 11, 0),  # past the last entry A1111 falls back to the first
    ([10], 5, 0),
    ([3, 5, 10], 3, 0),
    ([3, 5, 10], 4, 1),
    ([3, 5, 10], 5, 1),
    ([3, 5, 10], 6, 2),
    ([3, 5, 10], 100, 0),
]


@pytest.mark.parametrize(("ends", "call", "expected"), CALLS)
def test_index_at_call(ends, call, expected):
    schedule = [(end, f"text{end}") for end in ends]
    assert index_at_call(schedule, call) == expected
    assert text_at_call(schedule, call) == f"text{ends[expected]}"


def test_text_at_call_follows_an_edit_through_a_run():
    schedule = prompt_schedule("[a:b:1]", 4)
    assert [text_at_call(schedule, call) for call in range(5)] == ["a", "a", "b", "b", "b"]


def test_alternation_changes_every_call_after_the_first():
    schedule = prompt_schedule("[a|b]", 4)
    assert [text_at_call(schedule, call) for call in range(5)] == ["a", "a", "b", "a", "b"]
