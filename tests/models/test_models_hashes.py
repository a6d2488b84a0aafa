"""Hashes against hashlib on known bytes, and the cache computing each file once."""

from __future__ import annotations

import hashlib
import os

from modules.models import hashes


def _file(tmp_path, size: int, name: str = "m.safetensors"):  # noqa: ANN001, ANN202
    data = bytes((i * 7 + i // 251) % 256 for i in range(size))
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def test_sha256_and_legacy_hash(tmp_path) -> None:
    path, data = _file(tmp_path, 0x100000 + 0x10000 + 4321)
    assert hashes.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert hashes.legacy_model_hash(path) == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]


def test_legacy_hash_of_small_file_hashes_nothing(tmp_path) -> None:
    path, _ = _file(tmp_path, 1000)
    assert hashes.legacy_model_hash(path) == hashlib.sha256(b"").hexdigest()[:8]


def test_cache_computes_once_and_notices_changes(tmp_path, monkeypatch) -> None:
    path, data = _file(tmp_path, 5000)
    calls = []
    real = hashes.sha256_file
    monkeypatch.setattr(hashes, "sha256_file", lambda p: calls.append(p) or real(p))
    cache_file = tmp_path / "cache" / "hashes.json"
    cache = hashes.HashCache(cache_file)
    assert cache.cached(path) is None
    first = cache.sha256(path)
    assert cache.sha256(path) == first == hashlib.sha256(data).hexdigest()
    assert hashes.HashCache(cache_file).cached(path) == first  # persisted
    assert len(calls) == 1
    path.write_bytes(data + b"x")
    os.utime(path, (1, 1))
    assert cache.sha256(path) == hashlib.sha256(data + b"x").hexdigest()
    assert len(calls) == 2


def test_damaged_cache_is_ignored(tmp_path) -> None:
    (tmp_path / "c.json").write_text("{not json")
    path, data = _file(tmp_path, 10)
    assert hashes.HashCache(tmp_path / "c.json").sha256(path) == hashlib.sha256(data).hexdigest()
