"""Candidate phrases for CLIP ranking: plain-text lists, one phrase a line, shipped and user-extended.

The project ships lists in ``assets/interrogate/phrases/`` (``mediums``, ``artists``, ``movements``,
``flavours`` for any CLIP; ``demo-shapes`` and ``demo-backgrounds`` for the bundled world). A user adds
phrases by dropping a file of the same name in ``<data dir>/interrogate/`` (its lines are appended), or a
new list under a new name (used after the model's own lists).

As in A1111, a file named ``<list>.topN.txt`` contributes its best N phrases in "fast" mode (1 without
the suffix): A1111's content folder ships ``flavors.top3.txt`` that way, and users' files follow it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modules.paths import ASSETS

SHIPPED = ASSETS / "interrogate" / "phrases"
DEFAULT_LISTS = ("mediums", "artists", "movements", "flavours")  # for a CLIP that names none
LIST_NAMES_FILE = "phrase_lists.txt"  # in a CLIP folder: the lists that model was made for, in order
_TOP = re.compile(r"^(?P<name>.+?)(?:\.top(?P<top>\d+))?$")


@dataclass(frozen=True)
class PhraseList:
    name: str
    phrases: tuple[str, ...]
    top: int = 1  # phrases taken in "fast" mode

    @property
    def digest(self) -> str:
        """A hash of the phrases (what the text-feature cache is keyed by, beside the model's hash)."""
        return hashlib.sha256("\n".join(self.phrases).encode("utf-8")).hexdigest()


def _files(folder: Path) -> dict[str, tuple[Path, int]]:
    """``{list name: (file, top)}`` for the ``*.txt`` files of a folder (none if it does not exist)."""
    found = {}
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        match = _TOP.match(path.stem)
        if match:
            found[match["name"]] = (path, int(match["top"] or 1))
    return found


def read_phrases(path: Path) -> list[str]:
    """Stripped non-empty lines; undecodable bytes are replaced rather than stopping interrogation."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def list_names(model_dir: Path | None) -> list[str]:
    """The lists a CLIP folder names in ``phrase_lists.txt``, else the general ones."""
    named = model_dir / LIST_NAMES_FILE if model_dir is not None else None
    if named is not None and named.is_file():
        return read_phrases(named)
    return list(DEFAULT_LISTS)


def load_lists(
    names: Sequence[str], user_dir: Path | None, shipped_dir: Path = SHIPPED, limit: int = 0
) -> list[PhraseList]:
    """The named lists (shipped lines first, then the user's same-named file), then the user's new lists.

    Duplicates are dropped (first kept); ``limit`` > 0 keeps only that many phrases per list, as A1111's
    "CLIP: maximum number of lines in text file".
    """
    shipped = _files(shipped_dir)
    user = _files(user_dir) if user_dir is not None else {}
    order = list(dict.fromkeys([*names, *(n for n in user if n not in shipped)]))
    lists = []
    for name in order:
        sources = [entry for entry in (shipped.get(name), user.get(name)) if entry is not None]
        if not sources:
            continue
        phrases = _unique(p for path, _ in sources for p in read_phrases(path))
        if limit > 0:
            phrases = phrases[:limit]
        if phrases:
            lists.append(PhraseList(name, tuple(phrases), top=max(top for _, top in sources)))
    return lists


def _unique(phrases: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(phrases))
