"""Emphasis weights against A1111 1.x: each expected list is what A1111's parse_prompt_attention returned."""

from __future__ import annotations

import pytest

from modules.prompting import parse_attention

A1111_ATTENTION = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.5730000000000004),
            (" ", 1.1),
            ("on", 1.0),
            (" a ", 1.1),
            ("hill", 0.55),
            (", sun, ", 1.1),
            ("sky", 1.4641000000000006),
            (".", 1.1),
        ],
    ),
    ("", [("", 1.0)]),
    ("a (b:1.5) c", [("a ", 1.0), ("b", 1.5), (" c", 1.0)]),
    ("(a", [("a", 1.1)]),
    ("a)", [("a)", 1.0)]),
    ("a]", [("a]", 1.0)]),
    ("[a", [("a", 0.9090909090909091)]),
    ("[a]", [("a", 0.9090909090909091)]),
    ("((a))", [("a", 1.2100000000000002)]),
    ("[[a]]", [("a", 0.8264462809917354)]),
    ("(a:)", [("a:", 1.1)]),
    ("(a:-1)", [("a", -1.0)]),
    ("(a:1e3)", [("a:1e3", 1.1)]),
    ("(a: 1.5 )", [("a", 1.5)]),
    ("(a:+.5)", [("a", 0.5)]),
    ("(a:1.)", [("a", 1.0)]),
    ("(a:.5)", [("a", 0.5)]),
    ("a:1.5)", [("a:1.5)", 1.0)]),
    ("(a:b)", [("a:b", 1.1)]),
    ("(a:b:1.2)", [("a:b", 1.2)]),
    ("(a:1.2:1.3)", [("a:1.2", 1.3)]),
    ("(a:1.5", [("a:1.5", 1.1)]),
    ("(a:1.5))", [("a", 1.5), (")", 1.0)]),
    ("((a:1.5)", [("a", 1.6500000000000001)]),
    ("\\\\", [("\\", 1.0)]),
    ("\\", [("", 1.0)]),
    ("a\\b", [("ab", 1.0)]),
    ("\\(a\\)", [("(a)", 1.0)]),
    ("(\\))", [(")", 1.1)]),
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("BREAK", [("", 1.0), ("BREAK", -1.0), ("", 1.0)]),
    ("aBREAK b", [("aBREAK b", 1.0)]),
    ("a BREAKb", [("a BREAKb", 1.0)]),
    ("a BREAK BREAK b", [("a", 1.0), ("BREAK", -1.0), ("", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("(a BREAK b)", [("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]),
    ("(BREAK:0)", [("BREAK", 0.0)]),
    ("[a BREAK", [("a", 0.9090909090909091), ("BREAK", -0.9090909090909091), ("", 0.9090909090909091)]),
    ("a\nBREAK\nb", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("([a)b]", [("a", 1.0), ("b", 0.9090909090909091)]),
    ("[(a]b)", [("a", 1.0), ("b", 1.1)]),
    ("(a [b) c]", [("a ", 1.1), ("b", 1.0), (" c", 0.9090909090909091)]),
    (")(", [(")", 1.0)]),
    ("][", [("]", 1.0)]),
    ("(((", [("", 1.0)]),
    ("[[[", [("", 1.0)]),
    ("(a(b(c", [("a", 1.1), ("b", 1.2100000000000002), ("c", 1.3310000000000004)]),
    ("(a:0)(b:0)", [("ab", 0.0)]),
    ("(a:1.1)(b)", [("ab", 1.1)]),
    ("[a](b:0.9090909090909091)", [("ab", 0.9090909090909091)]),
    ("a (b) (c) d", [("a ", 1.0), ("b", 1.1), (" ", 1.0), ("c", 1.1), (" d", 1.0)]),
    (":", [(":", 1.0)]),
    ("a:b", [("a:b", 1.0)]),
    ("(:1.5)", [("", 1.0)]),
    ("(a)(:1.5)", [("a", 1.1)]),
    ("(a:1.5)(b:1.5)", [("ab", 1.5)]),
    ("((a)b:2)", [("a", 2.2), ("b", 2.0)]),
    ("[(a:2)]", [("a", 1.8181818181818181)]),
    ("([a]:2)", [("a", 1.8181818181818181)]),
    ("(a:99999999999999999999999)", [("a", 1e23)]),
]


@pytest.mark.parametrize(("text", "expected"), A1111_ATTENTION, ids=[repr(t) for t, _ in A1111_ATTENTION])
def test_attention_matches_a1111(text, expected):
    result = parse_attention(text)
    assert result == expected
    assert all(type(weight) is float for _, weight in result)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A1111 crashes in float() on these; we read the colon and the text as literal, as in (a:b)
        ("(a:1.2.3)", [("a:1.2.3", 1.1)]),
        ("(a:.)", [("a:.", 1.1)]),
        ("x (a:1.5.) y", [("x ", 1.0), ("a:1.5.", 1.1), (" y", 1.0)]),
        # ...and where A1111 does not crash (no open bracket) the text is the same as A1111's
        ("a:1.2.3)", [("a:1.2.3)", 1.0)]),
    ],
)
def test_malformed_weights_degrade_to_text(text, expected):
    assert parse_attention(text) == expected


def test_bits_of_negative_zero_survive():
    # 0.0 == -0.0, but A1111 keeps the sign through later multiplications
    ((_, weight),) = parse_attention("[(a:-0)")
    assert str(weight) == "-0.0"


def test_many_unclosed_brackets_multiply_in_sequence():
    result = parse_attention("a [" * 40 + "z")
    expected = 1.0
    for index, (_, weight) in enumerate(result[1:], start=1):
        expected *= 1 / 1.1  # one more unclosed "[" applies to each later chunk, one multiplication at a time
        assert weight == expected, index
