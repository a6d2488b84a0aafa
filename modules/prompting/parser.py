"""Text -> Prompt tree, with grammar/prompt.lark (LALR) over the bracket-matching lexer.

Parsing never raises on user text: a prompt A1111's grammar rejects becomes one Text node with
``literal_fallback`` set, which is what A1111 does with it (the whole text, no edits).
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError

from modules.prompting.lexer import BracketLexer
from modules.prompting.tree import Alternate, Deemphasis, Edit, Emphasis, Node, Prompt, Text, Weighted

GRAMMAR_PATH = Path(__file__).resolve().parents[2] / "grammar" / "prompt.lark"


def _merge_text(items: list[Token | Node]) -> tuple[Node, ...]:
    """Nodes with each run of adjacent TEXT/STRAY tokens joined into one Text."""
    nodes: list[Node] = []
    run: list[str] = []
    for item in items:
        if isinstance(item, Token):
            run.append(str(item))
            continue
        if run:
            nodes.append(Text("".join(run)))
            run = []
        nodes.append(item)
    if run:
        nodes.append(Text("".join(run)))
    return tuple(nodes)


class _BuildTree(Transformer):
    """Runs inside the LALR parser (no intermediate lark tree), one callback per rule."""

    def start(self, items: list[Token | Node]) -> tuple[Node, ...]:
        return _merge_text(items)

    def prompt(self, items: list[Token | Node]) -> tuple[Node, ...]:
        return _merge_text(items)

    def emphasis(self, children: list[tuple[Node, ...]]) -> Emphasis:
        return Emphasis(children[0])

    def weighted(self, children: list[tuple[Node, ...]]) -> Weighted:
        return Weighted(children[0], children[1])

    def deemphasis(self, children: list[tuple[Node, ...]]) -> Deemphasis:
        return Deemphasis(children[0])

    def edit(self, children: list) -> Edit:
        before, after, when = children
        return Edit(before, after, str(when))

    def alternate(self, children: list[tuple[Node, ...]]) -> Alternate:
        return Alternate(tuple(children))


@cache
def _parser() -> Lark:
    return Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer=BracketLexer,
        transformer=_BuildTree(),
        maybe_placeholders=True,  # "[after:when]" gives edit a None before
    )


@lru_cache(maxsize=1024)  # the live token counter re-parses the same text on every keystroke
def parse(text: str) -> Prompt:
    """The tree of one prompt (AND is not part of it: split_and works on the raw text first)."""
    try:
        return Prompt(_parser().parse(text))
    except LarkError:
        return Prompt((Text(text),) if text else (), literal_fallback=True)
