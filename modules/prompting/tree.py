"""The parse tree of one prompt: small immutable nodes with value equality, and its source text.

Nodes keep every character of the source (brackets, escapes, the whitespace around an edit's
number), so ``to_source(parse(text)) == text`` for every prompt that parses. Walks over the tree are
iterative because prompts can nest brackets deeper than Python's recursion limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """Literal text, verbatim: escapes stay escaped and stray brackets or colons stay in."""

    text: str


@dataclass(frozen=True)
class Emphasis:
    """``(body)``."""

    body: tuple[Node, ...]


@dataclass(frozen=True)
class Weighted:
    """``(body:weight)``; for the schedule the weight is just more prompt, as in A1111's grammar."""

    body: tuple[Node, ...]
    weight: tuple[Node, ...]


@dataclass(frozen=True)
class Deemphasis:
    """``[body]``."""

    body: tuple[Node, ...]


@dataclass(frozen=True)
class Edit:
    """``[before:after:when]``, or ``[after:when]`` with ``before`` None.

    ``when`` is the source text between the last colon and ``]``: a number with any whitespace
    around it (kept so the source round-trips); ``number`` is the number alone.
    """

    before: tuple[Node, ...] | None
    after: tuple[Node, ...]
    when: str

    @property
    def number(self) -> str:
        return self.when.strip()


@dataclass(frozen=True)
class Alternate:
    """``[a|b|c]``: one option per sampling step, in turn; an empty option is empty text."""

    options: tuple[tuple[Node, ...], ...]


Node = Text | Emphasis | Weighted | Deemphasis | Edit | Alternate
Piece = str | Node


@dataclass(frozen=True)
class Prompt:
    """One (AND-free) prompt.

    ``literal_fallback`` is True when A1111's grammar rejects the text (a ``|`` outside an
    alternation, a lone trailing backslash): A1111 then uses the whole text verbatim, with no edits,
    and ``nodes`` is that single Text.
    """

    nodes: tuple[Node, ...]
    literal_fallback: bool = False


def walk_text(nodes: Iterable[Piece], expand: Callable[[Node], Sequence[Piece]]) -> str:
    """Concatenate ``nodes``, replacing each node by ``expand(node)`` until only strings remain."""
    out: list[str] = []
    stack = [iter(nodes)]
    while stack:
        for piece in stack[-1]:
            if isinstance(piece, str):
                out.append(piece)
            elif isinstance(piece, Text):
                out.append(piece.text)
            else:
                stack.append(iter(expand(piece)))
                break
        else:
            stack.pop()
    return "".join(out)


def iter_nodes(nodes: Iterable[Node]) -> Iterable[Node]:
    """Every node of the tree, each option and both sides of every edit included (pre-order)."""
    stack = [iter(nodes)]
    while stack:
        for node in stack[-1]:
            yield node
            children = _children(node)
            if children:
                stack.append(iter(children))
                break
        else:
            stack.pop()


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case Text():
            return ()
        case Emphasis(body) | Deemphasis(body):
            return body
        case Weighted(body, weight):
            return body + weight
        case Edit(before, after, _):
            return (before or ()) + after
        case Alternate(options):
            return tuple(node for option in options for node in option)
    raise TypeError(f"not a prompt node: {node!r}")


def source_pieces(node: Node) -> Sequence[Piece]:
    """The node as written, one level deep."""
    match node:
        case Text(text):
            return (text,)
        case Emphasis(body):
            return ("(", *body, ")")
        case Weighted(body, weight):
            return ("(", *body, ":", *weight, ")")
        case Deemphasis(body):
            return ("[", *body, "]")
        case Edit(before, after, when):
            head = ("[",) if before is None else ("[", *before, ":")
            return (*head, *after, ":", when, "]")
        case Alternate(options):
            pieces: list[Piece] = ["["]
            for index, option in enumerate(options):
                if index:
                    pieces.append("|")
                pieces.extend(option)
            pieces.append("]")
            return pieces
    raise TypeError(f"not a prompt node: {node!r}")


def to_source(prompt: Prompt) -> str:
    """The text the prompt was parsed from."""
    return walk_text(prompt.nodes, source_pieces)
