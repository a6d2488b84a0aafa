"""Prompt comments with A1111 1.10's rules: whole-line comments go with their line, others to the line's end."""

from __future__ import annotations

import pytest

from modules.prompting import extract_extra_networks, strip_comments, texts_to_count

# prompt -> text after stripping; from the documented rule: 1) a "#" at the start of the text or
# right after a line break removes itself to the end of the line and the line break (both ends
# replaced by one "\n"), matches not overlapping; 2) any other "#" cuts to the end of its line,
# leaving a "\n" in place of the comment and its line break.
STRIP = [
    ("no comment here", "no comment here"),
    ("", ""),
    ("a # b", "a \n"),
    ("a #b\nc", "a \nc"),
    ("# note\nred circle", "\nred circle"),
    ("red\n# note\ncircle", "red\ncircle"),
    ("red\n# one\n# two\ncircle", "red\n\ncircle"),  # the second whole line is cut by the second rule
    ("red\n# last", "red\n"),
    ("#", "\n"),
    ("a ## b # c", "a \n"),
    ("a \\# b", "a \\\n"),  # no escape
    ("(red:1.2) # [blue:green:3]\ncircle", "(red:1.2) \ncircle"),
    ("a  #x\n  #y\nb", "a  \n  \nb"),  # indented: not a whole-line comment
]


@pytest.mark.parametrize(("prompt", "expected"), STRIP)
def test_strip_comments(prompt, expected):
    assert strip_comments(prompt) == expected


# prompt -> extra-network calls left after comments are stripped
NETWORKS = [
    ("a <lora:x:1> # <lora:y:0.5>", [("lora", ("x", "1"))]),
    ("# <lora:y:1>\nb <lora:z:0.3>", [("lora", ("z", "0.3"))]),
    ("<hypernet:h:1> b # c", [("hypernet", ("h", "1"))]),
    ("a # <lora:x:1>\n# <lora:y:1>", []),
]


@pytest.mark.parametrize(("prompt", "expected"), NETWORKS)
def test_comments_hide_extra_networks(prompt, expected):
    _, calls = extract_extra_networks(strip_comments(prompt))
    assert [(call.name, call.args) for call in calls] == expected


def test_comments_hide_schedules_and_and_from_the_counter():
    # AND splitting drops the trailing whitespace the comment left
    assert texts_to_count(strip_comments("red circle # AND [blue:green:2]"), 4) == ["red circle"]
