"""Prompt comments, A1111 1.10's "Enable comments": ``#`` hides the rest of its line from generation.

Two passes, in A1111's order: first every comment that starts a line is removed together with its line
break, then every other ``#`` is cut to the end of its line, where a line break is left. There is no
escape: ``\\#`` is a comment too. Comments are stripped before anything else reads the prompt (styles,
extra networks, AND, the parser, the token counter), so what they hide, ``<lora:...>`` tags included,
has no effect.
"""

from __future__ import annotations

import re

# A1111's rule: only a comment at the very start of the text or right after a line break is a
# whole-line comment; matches do not overlap, so the second of two consecutive comment lines is
# left to the second pass (it keeps one line break).
_WHOLE_LINE = re.compile(r"(?:\A|\n)#[^\n]*(?:\n|\Z)")
_REST_OF_LINE = re.compile(r"#[^\n]*(?:\n|\Z)")


def strip_comments(text: str) -> str:
    """The text without its ``#`` comments (the caller checks the "Enable comments" setting)."""
    if "#" not in text:
        return text
    return _REST_OF_LINE.sub("\n", _WHOLE_LINE.sub("\n", text))
