"""Tests for modules/styles.py: styles.csv, applying styles, recognising them in pasted prompts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modules.styles import PromptStyle, StyleDatabase, extract_style_text, merge_prompts


@pytest.mark.parametrize(
    ("style", "prompt", "expected"),
    [
        ("cinematic, film grain", "a fox", "a fox, cinematic, film grain"),
        ("masterpiece, {prompt}, 8k", "a fox", "masterpiece, a fox, 8k"),
        ("{prompt} and {prompt}", "x", "x and x"),
        ("  padded  ", "  a fox  ", "a fox, padded"),
        ("style", "", "style"),
        ("", "a fox", "a fox"),
    ],
)
def test_merge_prompts(style, prompt, expected):
    assert merge_prompts(style, prompt) == expected


@pytest.mark.parametrize(
    ("style", "prompt", "expected"),
    [
        ("cinematic", "a fox, cinematic", (True, "a fox")),
        ("masterpiece, {prompt}, 8k", "masterpiece, a fox, 8k", (True, "a fox")),
        ("cinematic", "cinematic, a fox", (False, "cinematic, a fox")),
        ("ab{prompt}b", "ab", (False, "ab")),  # halves may not overlap
        ("", " a fox ", (True, "a fox")),
    ],
)
def test_extract_style_text(style, prompt, expected):
    assert extract_style_text(style, prompt) == expected


CSV_TEXT = (
    "\ufeffname,prompt,negative_prompt\n"
    '"Cinematic","cinematic still of {prompt}, film grain","cartoon, drawing"\n'
    "# comment,ignored,\n"
    ",no name,\n"
    'Sharp,"sharp focus, 8k",\n'
)


def test_load_a1111_file(tmp_path):
    path = tmp_path / "styles.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    db = StyleDatabase(path)
    assert list(db.styles) == ["Cinematic", "Sharp"]
    assert db.styles["Cinematic"] == PromptStyle(
        "Cinematic", "cinematic still of {prompt}, film grain", "cartoon, drawing"
    )
    assert db.styles["Sharp"].negative_prompt == ""


def test_load_old_text_column(tmp_path):
    path = tmp_path / "styles.csv"
    path.write_text("name, text\nOld, oil painting\n", encoding="utf-8")
    assert StyleDatabase(path).styles["Old"] == PromptStyle("Old", "oil painting", "")


def test_missing_file_is_empty(tmp_path):
    assert StyleDatabase(tmp_path / "none.csv").styles == {}


def test_save_and_reload(tmp_path):
    path = tmp_path / "sub" / "styles.csv"
    db = StyleDatabase(path)
    db.add(PromptStyle("Quote", 'say "hi", {prompt}\nnext line', "bad, worse"))
    db.add(PromptStyle("Unicode", "猫, 🐱", ""))
    db.save()
    assert path.read_bytes().startswith(b"\xef\xbb\xbfname,prompt,negative_prompt")
    again = StyleDatabase(path)
    assert again.styles == db.styles
    db.remove("Quote")
    db.save()
    assert list(StyleDatabase(path).styles) == ["Unicode"]
    assert [p.name for p in path.parent.iterdir()] == ["styles.csv"]  # no temp files left


def test_apply_unknown_style_is_noop(tmp_path):
    db = StyleDatabase(tmp_path / "s.csv")
    assert db.apply_styles_to_prompt("a fox", ["Nope"]) == "a fox"


def test_apply_and_extract(tmp_path):
    path = tmp_path / "styles.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    db = StyleDatabase(path)
    prompt = db.apply_styles_to_prompt("a fox", ["Cinematic", "Sharp"])
    negative = db.apply_negative_styles_to_prompt("blurry", ["Cinematic", "Sharp"])
    assert prompt == "cinematic still of a fox, film grain, sharp focus, 8k"
    assert negative == "blurry, cartoon, drawing"
    assert db.extract_styles_from_prompt(prompt, negative) == (["Cinematic", "Sharp"], "a fox", "blurry")


def test_extract_needs_both_prompts(tmp_path):
    db = StyleDatabase(tmp_path / "s.csv")
    db.add(PromptStyle("Both", "vivid", "dull"))
    assert db.extract_styles_from_prompt("a fox, vivid", "blurry") == ([], "a fox, vivid", "blurry")
    assert db.extract_styles_from_prompt("a fox, vivid", "blurry, dull") == (["Both"], "a fox", "blurry")


STYLE_POOL = [
    PromptStyle("S0", "alpha0 tokens", "neg0 bits"),
    PromptStyle("S1", "beta1 {prompt} gamma1", ""),
    PromptStyle("S2", "delta2", "neg2, {prompt}"),
    PromptStyle("S3", "{prompt}, epsilon3", "neg3"),
    PromptStyle("S4", "", "neg4 only"),
]
PROMPT = st.text(st.sampled_from("abcxyz ,()"), max_size=20).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    chosen=st.lists(st.sampled_from(range(len(STYLE_POOL))), unique=True, max_size=4),
    prompt=PROMPT,
    negative=PROMPT,
)
def test_apply_extract_round_trip(tmp_path_factory, chosen, prompt, negative):
    db = StyleDatabase(tmp_path_factory.mktemp("styles") / "styles.csv")
    for style in STYLE_POOL:
        db.add(style)
    names = [STYLE_POOL[i].name for i in chosen]
    styled = db.apply_styles_to_prompt(prompt, names)
    styled_negative = db.apply_negative_styles_to_prompt(negative, names)
    found, base, base_negative = db.extract_styles_from_prompt(styled, styled_negative)
    # Extraction may find the styles in another order; re-applying what it found must give the same text.
    assert sorted(found) == sorted(names)
    assert db.apply_styles_to_prompt(base, found) == styled
    assert db.apply_negative_styles_to_prompt(base_negative, found) == styled_negative


# (style prompt, user prompt, comments on) -> merged: with comments on, the prompt and each style lose
# their comments (and outer whitespace) BEFORE merging, so a comment in the prompt never swallows the
# style appended after it (A1111's apply_styles_to_prompt).
STYLE_COMMENTS = [
    ("film grain # grainy", "a fox # quick", True, "a fox, film grain"),
    ("film grain", "a fox # quick", False, "a fox # quick, film grain"),
    ("{prompt}, 8k # sharp", "# note\na fox", True, "a fox, 8k"),
    ("# only a comment", "a fox", True, "a fox"),
    ("<lora:x:1> # <lora:y:1>", "a fox", True, "a fox, <lora:x:1>"),
]


@pytest.mark.parametrize(("style", "prompt", "comments", "expected"), STYLE_COMMENTS)
def test_styles_strip_comments_before_merging(tmp_path, style, prompt, comments, expected):
    db = StyleDatabase(tmp_path / "s.csv")
    db.add(PromptStyle("S", style, style))
    assert db.apply_styles_to_prompt(prompt, ["S"], comments=comments) == expected
    assert db.apply_negative_styles_to_prompt(prompt, ["S"], comments=comments) == expected
