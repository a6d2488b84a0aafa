"""AND splitting, extra-network calls and the token counter's texts, against A1111 1.x results."""

from __future__ import annotations

import pytest

from modules.prompting import (
    ExtraNetworkCall,
    WeightedPrompt,
    extract_extra_networks,
    split_and,
    texts_to_count,
)

W = WeightedPrompt

# expected values are A1111's get_multicond_prompt_list / re_weight results for each prompt
AND_CASES = [
    ("a cat", [W("a cat", 1.0)]),
    ("", [W("", 1.0)]),
    ("a AND b", [W("a", 1.0), W(" b", 1.0)]),
    ("a:1.5 AND b :0.5", [W("a", 1.5), W(" b", 0.5)]),
    ("a : 2", [W("a", 2.0)]),
    ("a:-1", [W("a", -1.0)]),
    ("a:+.5", [W("a", 0.5)]),
    ("a:1.", [W("a", 1.0)]),
    ("a:1.2.3", [W("a:1.2.3", 1.0)]),
    ("a:1e3", [W("a:1e3", 1.0)]),
    ("(a:1.2)", [W("(a:1.2)", 1.0)]),
    ("[a:b:0.5]", [W("[a:b:0.5]", 1.0)]),
    ("[a:b:0.5]:0.5", [W("[a:b:0.5]", 0.5)]),
    ("a\nb:2", [W("a\nb", 2.0)]),
    ("ANDROID AND", [W("ANDROID", 1.0), W("", 1.0)]),
    ("(a AND b)", [W("(a", 1.0), W(" b)", 1.0)]),
    ("aANDb", [W("aANDb", 1.0)]),
    ("a and b", [W("a and b", 1.0)]),
    ("a AND  AND b", [W("a", 1.0), W("", 1.0), W(" b", 1.0)]),
]


@pytest.mark.parametrize(("text", "expected"), AND_CASES, ids=[repr(t) for t, _ in AND_CASES])
def test_split_and(text, expected):
    assert split_and(text) == expected


E = ExtraNetworkCall

EXTRA_CASES = [
    ("a cat", ("a cat", [])),
    ("a <lora:film:0.7> cat", ("a  cat", [E("lora", ("film", "0.7"))])),
    ("<hypernet:x:1>", ("", [E("hypernet", ("x", "1"))])),
    ("<lora:name:0.8:0.5>x", ("x", [E("lora", ("name", "0.8", "0.5"))])),
    ("<lora:a> <lora:b:1>", (" ", [E("lora", ("a",)), E("lora", ("b", "1"))])),
    ("<lora::>", ("", [E("lora", ("", ""))])),
    ("<lora:>", ("<lora:>", [])),
    ("<lo ra:x>", ("<lo ra:x>", [])),
    ("<lora:a<b:1>", ("", [E("lora", ("a<b", "1"))])),
    ("<lora:x\ny>", ("", [E("lora", ("x\ny",))])),
    ("<<lora:x>>", ("<>", [E("lora", ("x",))])),
    ("<lora:x", ("<lora:x", [])),
]


@pytest.mark.parametrize(("text", "expected"), EXTRA_CASES, ids=[repr(t) for t, _ in EXTRA_CASES])
def test_extract_extra_networks(text, expected):
    assert extract_extra_networks(text) == expected


def test_token_counter_texts_positive():
    texts = texts_to_count("<lora:x:1>[a|b] AND c [d:e:2]", 4)
    assert texts == ["a", "b", " c d", " c e"]


def test_token_counter_texts_negative_is_not_split():
    assert texts_to_count("a AND [b:c:2]", 4, is_negative=True) == ["a AND b", "a AND c"]
