"""LoRA files on disk: finding them, their metadata, previews and hashes, and reading their tensors.

Names are file stems (``<lora:film_grain:0.8>`` finds ``film_grain.safetensors`` in any subfolder), and
the alias the trainer wrote (``ss_output_name``) finds the file too, as in A1111.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

SUFFIXES = (".safetensors", ".pt", ".ckpt")
PREVIEW_SUFFIXES = (".png", ".preview.png", ".jpg", ".jpeg", ".webp", ".preview.jpg", ".preview.webp")
CHUNK = 1 << 20


def read_metadata(path: Path) -> dict[str, Any]:
    """The safetensors header's ``__metadata__``; values holding JSON objects are parsed (as A1111)."""
    if path.suffix.lower() != ".safetensors":
        return {}
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size)) if 0 < size < 100_000_000 else {}
    except (OSError, ValueError):
        return {}
    raw = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        metadata[key] = value
        if isinstance(value, str) and value[:1] in "{[":
            try:
                metadata[key] = json.loads(value)
            except ValueError:
                pass
    return metadata


def addnet_hash(path: Path) -> str:
    """sha256 of a safetensors file's tensor data, header excluded: kohya's and A1111's LoRA hash,
    which stays the same when only the metadata is edited."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        header_size = int.from_bytes(handle.read(8), "little")
        handle.seek(8 + header_size)
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class LoraFile:
    name: str
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    _hash: str | None = field(default=None, repr=False)

    @property
    def alias(self) -> str:
        # A1111's "Alias from file": the trainer's output name, else the file name.
        return str(self.metadata.get("ss_output_name") or self.name)

    @property
    def sha256(self) -> str:
        """The full LoRA hash A1111 uses: the metadata's ``sshs_model_hash`` if present (A1111 trusts it),
        else the addnet hash for safetensors and the whole file's sha256 for pickles."""
        if self._hash is None:
            stored = self.metadata.get("sshs_model_hash")
            if stored:
                self._hash = str(stored)
            elif self.path.suffix.lower() == ".safetensors":
                self._hash = addnet_hash(self.path)
            else:
                self._hash = file_sha256(self.path)
        return self._hash

    @property
    def shorthash(self) -> str:
        """The 12 hex digits written into "Lora hashes" in the parameters text."""
        return self.sha256[:12]

    @property
    def preview(self) -> Path | None:
        stem = self.path.with_suffix("")
        for suffix in PREVIEW_SUFFIXES:
            candidate = stem.with_name(stem.name + suffix)
            if candidate.is_file():
                return candidate
        return None

    def item(self) -> dict[str, Any]:
        """The /sdapi/v1/loras entry: name, alias, path, metadata."""
        return {"name": self.name, "alias": self.alias, "path": str(self.path), "metadata": self.metadata}


class LoraLibrary:
    """The LoRA files of the given folders, rescanned on ``refresh()``; loaded tensors are kept for the
    few most recently used files so that the next batch/job with the same LoRA reads nothing."""

    def __init__(self, folders: list[Path], keep_loaded: int = 4) -> None:
        self.folders = folders
        self.keep_loaded = keep_loaded
        self._files: dict[str, LoraFile] | None = None
        self._loaded: OrderedDict[tuple[str, float], dict[str, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def refresh(self) -> None:
        found: dict[str, LoraFile] = {}
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
                found.setdefault(path.stem, LoraFile(path.stem, path, read_metadata(path)))
        with self._lock:
            self._files = found

    def files(self) -> list[LoraFile]:
        if self._files is None:
            self.refresh()
        return list(self._files.values())

    def find(self, name: str) -> LoraFile | None:
        """By file name first, then by alias; a miss rescans the folders once (a file added since)."""
        for attempt in range(2):
            files = self.files()
            by_name = {f.name: f for f in files}
            found = by_name.get(name) or next((f for f in files if f.alias == name), None)
            if found is not None or attempt:
                return found
            self.refresh()
        return None

    def find_by_hash(self, short: str) -> LoraFile | None:
        short = short.lower()
        return next((f for f in self.files() if f.shorthash.lower().startswith(short)), None)

    def tensors(self, lora: LoraFile) -> dict[str, torch.Tensor]:
        key = (str(lora.path), lora.path.stat().st_mtime)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        if lora.path.suffix.lower() == ".safetensors":
            tensors = load_file(str(lora.path))
        else:
            tensors = torch.load(lora.path, map_location="cpu", weights_only=True)
        with self._lock:
            self._loaded[key] = tensors
            while len(self._loaded) > self.keep_loaded:
                self._loaded.popitem(last=False)
        return tensors
