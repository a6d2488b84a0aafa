"""File hashes users see in infotexts and titles, with a JSON cache so each file is hashed once.

- sha256 of the whole file; its first 10 hex digits are the "Model hash" A1111 writes into infotexts.
- The old A1111 model hash: sha256 of 64 KiB read at offset 1 MiB, first 8 hex digits. Old infotexts and
  prompts carry it, so checkpoints must still be findable by it.

The cache maps a file's absolute path to its size, mtime and sha256; a changed size or mtime recomputes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_folder(folder: Path) -> str:
    """Our own convention for diffusers folders: sha256 over the weight files' bytes in path order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(folder).rglob("*") if p.suffix in (".safetensors", ".bin")):
        with open(file, "rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
    return digest.hexdigest()


def legacy_model_hash(path: Path) -> str:
    """A1111's original "model hash": 0x10000 bytes at offset 0x100000 (a small file hashes what exists)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        file.seek(0x100000)
        digest.update(file.read(0x10000))
    return digest.hexdigest()[:8]


class HashCache:
    """Thread-safe sha256 cache persisted as JSON: {path: {"size", "mtime", "sha256"}}."""

    def __init__(self, cache_file: Path | None) -> None:
        self.cache_file = Path(cache_file) if cache_file else None
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = self._read()

    def _read(self) -> dict[str, dict]:
        if self.cache_file is None or not self.cache_file.is_file():
            return {}
        try:
            data = json.loads(self.cache_file.read_text())
        except (OSError, json.JSONDecodeError):
            return {}  # a damaged cache only costs rehashing
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _stamp(path: Path) -> tuple[int, float]:
        if path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file()]
            return sum(p.stat().st_size for p in files), max((p.stat().st_mtime for p in files), default=0.0)
        stat = path.stat()
        return stat.st_size, stat.st_mtime

    def cached(self, path: Path) -> str | None:
        """The sha256 if it is cached and the file is unchanged; never computes."""
        path = Path(path).resolve()
        size, mtime = self._stamp(path)
        with self._lock:
            entry = self._entries.get(str(path))
        if entry and entry.get("size") == size and entry.get("mtime") == mtime:
            return entry.get("sha256")
        return None

    def sha256(self, path: Path) -> str:
        """The file's (or diffusers folder's) sha256, computed once and remembered."""
        path = Path(path).resolve()
        known = self.cached(path)
        if known:
            return known
        size, mtime = self._stamp(path)
        value = sha256_folder(path) if path.is_dir() else sha256_file(path)
        with self._lock:
            self._entries[str(path)] = {"size": size, "mtime": mtime, "sha256": value}
            self._write()
        return value

    def _write(self) -> None:
        if self.cache_file is None:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.cache_file.with_suffix(f".tmp{os.getpid()}")
        temporary.write_text(json.dumps(self._entries, indent=1, sort_keys=True))
        temporary.replace(self.cache_file)  # atomic: a crash never leaves half a cache
