"""Parse trees: structure, stray brackets as text, A1111's parse failures, source round trip."""

from __future__ import annotations

import pytest

from modules.prompting import (
    Alternate,
    Deemphasis,
    Edit,
    Emphasis,
    Prompt,
    Text,
    Weighted,
    parse,
    to_source,
)


def T(text: str) -> Text:
    return Text(text)


TREES = [
    ("", ()),
    ("a cat", (T("a cat"),)),
    ("a (b) c", (T("a "), Emphasis((T("b"),)), T(" c"))),
    ("(a:1.2)", (Weighted((T("a"),), (T("1.2"),)),)),
    ("(a:b)", (Weighted((T("a"),), (T("b"),)),)),
    ("(:)", (Weighted((), ()),)),
    ("()", (Emphasis(()),)),
    ("[]", (Deemphasis(()),)),
    ("[a]", (Deemphasis((T("a"),)),)),
    ("[a:b:0.5]", (Edit((T("a"),), (T("b"),), "0.5"),)),
    ("[b:3]", (Edit(None, (T("b"),), "3"),)),
    ("[a::3]", (Edit((T("a"),), (), "3"),)),
    ("[:a:3]", (Edit((), (T("a"),), "3"),)),
    ("[:3]", (Edit(None, (), "3"),)),
    ("[a:b: 2 ]", (Edit((T("a"),), (T("b"),), " 2 "),)),
    ("[a|b|]", (Alternate(((T("a"),), (T("b"),), ())),)),
    ("[|]", (Alternate(((), ())),)),
    ("([a:b:1]:1.2)", (Weighted((Edit((T("a"),), (T("b"),), "1"),), (T("1.2"),)),)),
    ("[[a]:b:2]", (Edit((Deemphasis((T("a"),)),), (T("b"),), "2"),)),
    ("[a|[b:c:2]]", (Alternate(((T("a"),), (Edit((T("b"),), (T("c"),), "2"),))),)),
    # stray brackets and colons are text, at the top level only
    ("(a", (T("(a"),)),
    ("a)", (T("a)"),)),
    ("a:b", (T("a:b"),)),
    ("a) [b:1]", (T("a) "), Edit(None, (T("b"),), "1"))),
    ("((a][:b:c [d:3]", (T("((a][:b:c "), Edit(None, (T("d"),), "3"))),
    ("(a:b:c)", (T("(a:b:c)"),)),
    ("[x [a:b] y]", (T("[x [a:b] y]"),)),
    ("[a:b:c]", (T("[a:b:c]"),)),
    ("[a:b:1.5.3]", (T("[a:b:1.5.3]"),)),
    ("[a:b:1]]", (Edit((T("a"),), (T("b"),), "1"), T("]"))),
    ("([a:b:1]", (T("("), Edit((T("a"),), (T("b"),), "1"))),
    ("[a (b] c)", (T("[a (b] c)"),)),
    ("(a [b) c]", (T("(a [b) c]"),)),
    ("[(a)] (b", (Deemphasis((Emphasis((T("a"),)),)), T(" (b"))),
    # escapes are text and never structure
    ("\\(a\\)", (T("\\(a\\)"),)),
    ("[a\\:b:2]", (Edit(None, (T("a\\:b"),), "2"),)),
    ("[a:b:\\2]", (T("[a:b:\\2]"),)),
    ("a \\| b", (T("a \\| b"),)),
]


@pytest.mark.parametrize(("text", "nodes"), TREES, ids=[repr(t) for t, _ in TREES])
def test_tree(text, nodes):
    assert parse(text) == Prompt(nodes)
    assert to_source(parse(text)) == text


@pytest.mark.parametrize(
    "text",
    ["a|b", "(a|b)", "[a|b", "[a|b:c]", "[a:b|c:2]", "a\\", "a\\\nb", "[a|b] c|d", "|", "[a|(b|c)]"],
)
def test_text_a1111_cannot_parse_is_one_literal(text):
    assert parse(text) == Prompt((Text(text),), literal_fallback=True)


def test_edit_number_is_the_stripped_when():
    (edit,) = parse("[a:b:\t0.25 ]").nodes
    assert (edit.when, edit.number) == ("\t0.25 ", "0.25")


def test_trees_are_immutable_and_hashable():
    prompt = parse("a [b:c:2] (d)")
    with pytest.raises(AttributeError):
        prompt.nodes = ()
    assert hash(prompt) == hash(parse("a [b:c:2] (d)"))


def test_deep_nesting_parses_without_recursion():
    text = "(" * 3000 + "a" + ")" * 3000
    prompt = parse(text)
    assert not prompt.literal_fallback
    assert to_source(prompt) == text
