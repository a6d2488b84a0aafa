"""Tokens for grammar/prompt.lark: decides which brackets and colons are structure, which are text.

A1111's Earley grammar lets any bracket or colon be literal text at the top level, while inside a
construct everything must be well-formed. Where a construct could be read either way (``[a:b:1]]``,
``[a:b:1](``) A1111's pick depends on Python's per-process string hash seed, so it changes from one
launch of A1111 to the next (measured with lark 1.1.2 under seeds 0-7). We always take the
construct: that is what A1111 gives wherever the text is unambiguous, and it is decidable in one
left-to-right pass with a stack, which keeps parsing linear:

- an opening bracket is pushed; its closing bracket pops it when the contents have the shape of a
  construct, and then it, its colons and its closing bracket are structure;
- as soon as the bracket on top can no longer close as a construct (a mismatched closing bracket,
  a second colon in "(", an edit whose last part is not a number, ...), every bracket on the stack is
  literal text, because a construct cannot contain literal brackets; the stack is emptied, and the
  constructs already closed inside them stay constructs.

A "|" is always passed on as "|": outside an alternation the grammar rejects it, as A1111's does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from lark.exceptions import LarkError
from lark.lexer import Lexer, Token

# Plain text is A1111's `plain` terminal: "\" escapes any character but a newline (its regex has no
# DOTALL flag), so a backslash at the end or before a newline matches no terminal at all.
_ATOMS = re.compile(r"(?P<special>[][():|])|(?P<text>(?:[^\\\[\]():|]|\\.)+)|(?P<lone>\\)")

# Lark's SIGNED_NUMBER, as its ordered alternation matches: A1111's lexer takes the first match and
# then needs only whitespace before "]". ASCII digits only, unlike Python's \d.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+[eE][+-]?[0-9]+|(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+)")
_SPACE = re.compile(r"\s*")

_OPENERS = {"(": "LPAR", "[": "LSQB"}
_CLOSERS = {"(": "RPAR", "[": "RSQB"}
_MATCHING = {")": "(", "]": "["}


class UnparseableText(LarkError):
    """A lone backslash: no token of A1111's grammar matches it."""


@dataclass(slots=True)
class _Open:
    """An opening bracket on the stack, with what was seen directly inside it so far."""

    at: int  # atom index of the bracket
    char: str
    colons: list[int] = field(default_factory=list)
    has_pipe: bool = False
    last_child_end: int = -1  # atom index of the closing bracket of the last construct inside

    def takes_colon(self) -> bool:
        # "(a:b)" has at most one colon; an edit at most two and no "|"
        return len(self.colons) < (1 if self.char == "(" else 2) and not self.has_pipe

    def takes_pipe(self) -> bool:
        return self.char == "[" and not self.colons


def _atoms(text: str) -> list[tuple[str, str]]:
    """(kind, text) runs: kind "special" for ( ) [ ] : |, "text" for plain text."""
    atoms = []
    for match in _ATOMS.finditer(text):
        if match.lastgroup == "lone":
            raise UnparseableText(f"backslash at {match.start()} escapes nothing")
        atoms.append((match.lastgroup, match.group()))
    return atoms


def _is_when(segment: str) -> bool:
    start = _SPACE.match(segment).end()
    number = _NUMBER.match(segment, start)
    return number is not None and _SPACE.fullmatch(segment, number.end()) is not None


def _closes(top: _Open, atoms: list[tuple[str, str]], at: int) -> bool:
    """Whether the bracket ``top`` closed by the bracket at ``at`` forms a construct."""
    if top.char == "(" or top.has_pipe or not top.colons:
        return True
    last_colon = top.colons[-1]
    if top.last_child_end > last_colon:
        return False
    # nothing but one text run can lie between the last colon and "]" at this point
    segment = atoms[last_colon + 1][1] if last_colon + 1 < at else ""
    return _is_when(segment)


def token_types(atoms: list[tuple[str, str]]) -> list[str]:
    """The grammar's token type for each atom."""
    types = ["TEXT" if kind == "text" else "VBAR" if value == "|" else "STRAY" for kind, value in atoms]
    stack: list[_Open] = []
    for at, (kind, value) in enumerate(atoms):
        if kind == "text":
            continue
        if value in _OPENERS:
            stack.append(_Open(at, value))
        elif not stack:
            continue  # top level: a stray closer or colon is text, a "|" stays "|"
        elif value == ":":
            if stack[-1].takes_colon():
                stack[-1].colons.append(at)
            else:
                stack.clear()
        elif value == "|":
            if stack[-1].takes_pipe():
                stack[-1].has_pipe = True
            else:
                stack.clear()
        elif _MATCHING[value] == stack[-1].char and _closes(stack[-1], atoms, at):
            top = stack.pop()
            _mark_construct(types, top, at)
            if stack:
                stack[-1].last_child_end = at
        else:
            stack.clear()
    return types


def _mark_construct(types: list[str], top: _Open, close_at: int) -> None:
    types[top.at] = _OPENERS[top.char]
    types[close_at] = _CLOSERS[top.char]
    for colon in top.colons:
        types[colon] = "COLON"
    is_edit = top.char == "[" and top.colons and not top.has_pipe
    if is_edit:
        types[top.colons[-1] + 1] = "WHEN"


def tokens(text: str) -> Iterator[Token]:
    """The token stream for ``text``; adjacent text (or stray) atoms are one token."""
    atoms = _atoms(text)
    types = token_types(atoms)
    run_type, run = "", []
    for (_, value), type_ in zip(atoms, types, strict=True):
        if type_ == run_type and type_ in ("TEXT", "STRAY"):
            run.append(value)
            continue
        if run:
            yield Token(run_type, "".join(run))
        run_type, run = type_, [value]
    if run:
        yield Token(run_type, "".join(run))


class BracketLexer(Lexer):
    """Lark's custom-lexer hook (interface 0: ``lex(text)``)."""

    def __init__(self, lexer_conf: object) -> None:
        pass

    def lex(self, text: str) -> Iterator[Token]:  # type: ignore[override]
        return tokens(text)
