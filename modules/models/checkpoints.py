"""Checkpoint discovery: what the user has in their model folders, and finding one by what users type.

Titles follow A1111: "name [shorthash]" where name is the path relative to the checkpoint folder and the
10-character sha256 prefix is shown once known (hashing happens on first load unless asked for at scan
time, as A1111 does, because hashing a folder of multi-GB files takes minutes).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from modules.models.hashes import HashCache, legacy_model_hash

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt")
# Files beside checkpoints that are not checkpoints (A1111 keeps VAEs next to models as *.vae.*).
_NOT_CHECKPOINT = re.compile(r"\.vae\.(pt|ckpt|safetensors)$", re.IGNORECASE)


@dataclass
class CheckpointInfo:
    path: Path
    name: str  # relative to the folder it was found in, with "/" separators
    sha256: str | None = None
    legacy_hash: str | None = None

    @property
    def model_name(self) -> str:
        """The name without extension, as A1111 writes it into infotexts ("Model: ...")."""
        return re.sub(r"\.(safetensors|ckpt|pt)$", "", Path(self.name).name, flags=re.IGNORECASE)

    @property
    def short_hash(self) -> str | None:
        return self.sha256[:10] if self.sha256 else None

    @property
    def title(self) -> str:
        return f"{self.name} [{self.short_hash}]" if self.short_hash else self.name

    def aliases(self) -> list[str]:
        """Every string that selects this checkpoint exactly (A1111's checkpoint aliases)."""
        names = [self.title, self.name, self.model_name, str(self.path)]
        names += [h for h in (self.sha256, self.short_hash, self.legacy_hash) if h]
        return names


def is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model_index.json").is_file() and (path / "unet").is_dir()


def scan(folders: list[Path], cache: HashCache, compute_sha256: bool = False) -> list[CheckpointInfo]:
    """All checkpoints under ``folders`` (recursive), sorted by name; refresh is simply scanning again.

    An entry that is a checkpoint file rather than a folder is listed itself (``--ckpt`` with a file
    outside the model folders, which A1111 adds to the list)."""
    found: dict[Path, CheckpointInfo] = {}
    for folder in map(Path, folders):
        if folder.is_file() or is_diffusers_folder(folder):
            found.setdefault(folder.resolve(), _info(folder, folder.parent, cache, compute_sha256))
        elif folder.is_dir():
            for path in _candidates(folder):
                found.setdefault(path.resolve(), _info(path, folder, cache, compute_sha256))
    return sorted(found.values(), key=lambda info: info.name.lower())


def _candidates(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = Path(root)
        for name in list(dirs):
            if is_diffusers_folder(here / name):
                out.append(here / name)
                dirs.remove(name)  # its weight files belong to it, not listed on their own
        out += [
            here / name
            for name in files
            if name.lower().endswith(CHECKPOINT_SUFFIXES) and not _NOT_CHECKPOINT.search(name)
        ]
    return sorted(out)


def _info(path: Path, folder: Path, cache: HashCache, compute_sha256: bool) -> CheckpointInfo:
    sha = cache.sha256(path) if compute_sha256 else cache.cached(path)
    return CheckpointInfo(
        path=path,
        name=path.relative_to(folder).as_posix(),
        sha256=sha,
        legacy_hash=None if path.is_dir() else legacy_model_hash(path),
    )


_TRAILING_HASH = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]$")


def find(checkpoints: list[CheckpointInfo], query: str) -> CheckpointInfo | None:
    """A1111's lookup: an exact alias (title, name, name without extension, any hash), then the same
    without a trailing " [hash]", then the shortest title containing the query."""
    query = query.strip()
    for candidate in (query, _TRAILING_HASH.sub("", query)):
        for info in checkpoints:
            if candidate in info.aliases():
                return info
    containing = [info for info in checkpoints if query in info.title]
    return min(containing, key=lambda info: len(info.title)) if containing else None
