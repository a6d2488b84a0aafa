"""Prompt styles: named prompt/negative-prompt snippets kept in styles.csv, applied and recognised.

This module owns the styles.csv format of AUTOMATIC1111's web UI (columns name, prompt,
negative_prompt; old files with a "text" column still load), merging a style into a prompt
(``{prompt}`` marks where the user's prompt goes, otherwise the style is appended after ", "), and
taking applied styles back out of a pasted prompt. A database is an explicit object, never a global.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modules.prompting.comments import strip_comments

PLACEHOLDER = "{prompt}"
FIELDS = ("name", "prompt", "negative_prompt")


@dataclass(frozen=True)
class PromptStyle:
    """One style: a name and the texts it adds to the prompt and negative prompt."""

    name: str
    prompt: str = ""
    negative_prompt: str = ""


def merge_prompts(style_prompt: str, prompt: str) -> str:
    """Insert ``prompt`` at ``{prompt}`` of the style, or join both with ", " (empty parts skipped)."""
    if PLACEHOLDER in style_prompt:
        return style_prompt.replace(PLACEHOLDER, prompt)
    return ", ".join(part for part in (prompt.strip(), style_prompt.strip()) if part)


def extract_style_text(style_text: str, prompt: str) -> tuple[bool, str]:
    """Undo :func:`merge_prompts` for one style text: (matched, prompt without the style).

    Same rules as A1111: both sides are stripped; with ``{prompt}`` the text must start and end
    with the style's two halves; without it the prompt must end with the style text, and the ", "
    joining them is removed too.
    """
    stripped_prompt = prompt.strip()
    stripped_style = style_text.strip()
    if PLACEHOLDER in stripped_style:
        left, _, right = stripped_style.partition(PLACEHOLDER)
        # An empty prompt in "neg, {prompt}" left "neg, " that the strip cut to "neg,": A1111 misses
        # this; we recognise it.
        if stripped_prompt == (left + right).strip():
            return True, ""
        # A1111 does not check that the halves overlap-free fit; we do, so "ab" never matches "ab{prompt}b".
        if (
            stripped_prompt.startswith(left)
            and stripped_prompt.endswith(right)
            and len(stripped_prompt) >= len(left) + len(right)
        ):
            return True, stripped_prompt[len(left) : len(stripped_prompt) - len(right)]
        return False, prompt
    if stripped_prompt.endswith(stripped_style):
        rest = stripped_prompt[: len(stripped_prompt) - len(stripped_style)]
        return True, rest[:-2] if rest.endswith(", ") else rest
    return False, prompt


def extract_style(style: PromptStyle, prompt: str, negative_prompt: str) -> tuple[bool, str, str]:
    """Remove one style from both prompts; it matches only if both its texts are found."""
    if not style.prompt and not style.negative_prompt:
        return False, prompt, negative_prompt
    ok_positive, positive = extract_style_text(style.prompt, prompt)
    if not ok_positive:
        return False, prompt, negative_prompt
    ok_negative, negative = extract_style_text(style.negative_prompt, negative_prompt)
    if not ok_negative:
        return False, prompt, negative_prompt
    return True, positive, negative


class StyleDatabase:
    """The styles of one styles.csv file, in file order."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.styles: dict[str, PromptStyle] = {}
        self.load()

    def load(self) -> None:
        """(Re)read the file; a missing file means no styles."""
        self.styles = {}
        if not self.path.exists():
            return
        # utf-8-sig: A1111 writes a BOM so that Excel opens the file as UTF-8.
        with open(self.path, encoding="utf-8-sig", newline="") as src:
            for row in csv.DictReader(src, skipinitialspace=True):
                name = row.get("name") or ""
                if not name or name.startswith("#"):
                    continue  # blank rows and "#" comment rows are skipped, as in A1111
                # Files from before negative prompts named the prompt column "text".
                prompt = row.get("prompt") if "prompt" in row else row.get("text")
                self.styles[name] = PromptStyle(name, prompt or "", row.get("negative_prompt") or "")

    def save(self) -> None:
        """Write all styles atomically (temp file + replace), with A1111's header and BOM."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".csv", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(FIELDS)
                writer.writerows((s.name, s.prompt, s.negative_prompt) for s in self.styles.values())
            os.replace(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def add(self, style: PromptStyle) -> None:
        """Add or replace a style by name (callers then :meth:`save`)."""
        self.styles[style.name] = style

    def remove(self, name: str) -> None:
        """Forget a style; unknown names are ignored."""
        self.styles.pop(name, None)

    def _selected(self, names: Iterable[str]) -> list[PromptStyle]:
        # Unknown names apply as empty styles (A1111's "no style"), so old selections never fail.
        return [self.styles.get(name, PromptStyle(name)) for name in names]

    def apply_styles_to_prompt(self, prompt: str, names: Iterable[str], comments: bool = False) -> str:
        """The prompt with the named styles merged in, in order; ``comments``: strip ``#`` comments
        from the prompt and each style first (A1111 does, so a comment never swallows a style)."""
        return self._apply(prompt, [style.prompt for style in self._selected(names)], comments)

    def apply_negative_styles_to_prompt(
        self, negative_prompt: str, names: Iterable[str], comments: bool = False
    ) -> str:
        """The negative prompt with the named styles' negative texts merged in, in order."""
        return self._apply(
            negative_prompt, [style.negative_prompt for style in self._selected(names)], comments
        )

    @staticmethod
    def _apply(prompt: str, style_texts: list[str], comments: bool) -> str:
        if comments:
            prompt = strip_comments(prompt).strip()
            style_texts = [strip_comments(text).strip() for text in style_texts]
        for text in style_texts:
            prompt = merge_prompts(text, prompt)
        return prompt

    def extract_styles_from_prompt(self, prompt: str, negative_prompt: str) -> tuple[list[str], str, str]:
        """Find which styles were applied to these prompts and remove them.

        As A1111: repeatedly take the first style (file order) whose texts match at the prompts'
        ends, each style at most once; the names come back in application order (the reverse).
        """
        candidates = list(self.styles.values())
        found: list[str] = []
        while True:
            for style in candidates:
                matched, new_prompt, new_negative = extract_style(style, prompt, negative_prompt)
                if matched:
                    prompt, negative_prompt = new_prompt, new_negative
                    candidates.remove(style)
                    found.append(style.name)
                    break
            else:
                return list(reversed(found)), prompt, negative_prompt
