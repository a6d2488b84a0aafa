"""Textual-inversion embeddings: finding, safely loading and hashing embedding files.

Owns the file formats (A1111 ``.pt``, diffusers ``.bin``, ``.safetensors`` in SD1 and SDXL form) and the
database of embeddings by name. Matching names inside prompts lives in ``chunks.py``; splicing vectors
into the text model lives in ``text_model.py``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import safetensors.torch
import torch

log = logging.getLogger(__name__)

EMBEDDING_SUFFIXES = (".pt", ".bin", ".safetensors")
SDXL_KEYS = ("clip_l", "clip_g")


@dataclass(eq=False)
class Embedding:
    """One embedding: ``vectors`` is ``[n, dim]`` (SD1/SD2) or ``{"clip_l": [n, 768], "clip_g": [n, 1280]}`` (SDXL)."""

    name: str
    vectors: torch.Tensor | dict[str, torch.Tensor]
    path: Path | None = None
    step: int | None = None
    _sha256: str | None = field(default=None, repr=False)

    @property
    def vector_count(self) -> int:
        """Token positions the embedding occupies; for SDXL A1111 counts clip_g's rows."""
        if isinstance(self.vectors, dict):
            return int(self.vectors["clip_g"].shape[0])
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """Width compared with the model's (768 SD1, 1024 SD2, 768 + 1280 = 2048 SDXL), as A1111 does."""
        if isinstance(self.vectors, dict):
            return sum(int(self.vectors[key].shape[-1]) for key in SDXL_KEYS)
        return int(self.vectors.shape[-1])

    def vectors_for(self, encoder_index: int) -> torch.Tensor:
        """The rows for one text encoder: SDXL files hold one tensor per encoder (CLIP-L first)."""
        if isinstance(self.vectors, dict):
            return self.vectors[SDXL_KEYS[encoder_index]]
        return self.vectors

    @property
    def sha256(self) -> str | None:
        if self._sha256 is None and self.path is not None:
            self._sha256 = file_sha256(self.path)
        return self._sha256

    @property
    def short_hash(self) -> str | None:
        """A1111's "TI hashes" value: the first 12 hex digits of the file's sha256."""
        return self.sha256[:12] if self.sha256 else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_embedding_data(path: Path) -> dict:
    """The raw dictionary stored in an embedding file, without running pickled code."""
    if path.suffix.lower() == ".safetensors":
        return safetensors.torch.load_file(str(path), device="cpu")
    # weights_only refuses arbitrary pickled objects; A1111's .pt files hold only tensors, Parameters and strings.
    return torch.load(path, map_location="cpu", weights_only=True)


def embedding_from_data(data: dict, name: str, path: Path | None = None) -> Embedding:
    """Interpret a loaded file the way A1111 does: A1111 .pt, then SDXL pair, then a one-tensor dict."""
    if not isinstance(data, dict):
        raise ValueError(f"{name}: not an embedding (a {type(data).__name__}, not a dict)")
    if "string_to_param" in data:
        params = data["string_to_param"]
        if len(params) != 1:
            raise ValueError(f"{name}: embedding file has {len(params)} terms; one is supported")
        vectors: torch.Tensor | dict[str, torch.Tensor] = _as_rows(next(iter(params.values())))
    elif all(key in data for key in SDXL_KEYS):
        vectors = {key: _as_rows(data[key]) for key in SDXL_KEYS}
    elif len(data) == 1 and isinstance(next(iter(data.values())), torch.Tensor):
        # diffusers .bin ({token: tensor}) and SD1 .safetensors ({"emb_params": tensor}) share this form.
        vectors = _as_rows(next(iter(data.values())))
    else:
        raise ValueError(f"{name}: neither an A1111 embedding, an SDXL embedding nor a diffusers concept")
    step = data.get("step")
    return Embedding(name=name, vectors=vectors, path=path, step=step if isinstance(step, int) else None)


def _as_rows(tensor: torch.Tensor) -> torch.Tensor:
    # diffusers concepts store a single vector as 1-D; A1111 treats it as one token.
    tensor = tensor.detach().to(torch.float32)
    return tensor.unsqueeze(0) if tensor.dim() == 1 else tensor


def load_embedding_file(path: Path) -> Embedding:
    """The embedding in one file, named by the file's stem (what users type in prompts)."""
    path = Path(path)
    return embedding_from_data(read_embedding_data(path), path.stem, path)


class EmbeddingDatabase:
    """All embeddings found under some folders, by name, in load order.

    Folders are walked recursively, sorted by folder then case-insensitive file name so the result does
    not depend on the file system; a later file with an already-seen name replaces the earlier one, as in
    A1111. Files that fail to load are listed in ``errors`` and otherwise ignored.
    """

    def __init__(self, dirs: Iterable[Path | str] = ()) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.embeddings: dict[str, Embedding] = {}
        self.errors: dict[Path, str] = {}
        self.load()

    def load(self) -> None:
        """(Re)scan the folders."""
        self.embeddings.clear()
        self.errors.clear()
        for path in self._files():
            try:
                embedding = load_embedding_file(path)
            except Exception as error:  # a broken file must not stop the others from loading
                self.errors[path] = str(error)
                log.warning("Skipping embedding %s: %s", path, error)
                continue
            self.embeddings.pop(embedding.name, None)
            self.embeddings[embedding.name] = embedding

    def add(self, embedding: Embedding) -> None:
        """Register an embedding that did not come from the folders (tests, extensions)."""
        self.embeddings.pop(embedding.name, None)
        self.embeddings[embedding.name] = embedding

    def _files(self) -> list[Path]:
        found = []
        for root_dir in self.dirs:
            if not root_dir.is_dir():
                continue
            walked = sorted(os.walk(root_dir, followlinks=True), key=lambda entry: entry[0])
            for root, _, names in walked:
                for name in sorted(names, key=str.lower):
                    path = Path(root, name)
                    # A1111 skips empty files silently (placeholders left by interrupted downloads).
                    if (
                        path.suffix.lower() in EMBEDDING_SUFFIXES
                        and path.is_file()
                        and path.stat().st_size > 0
                    ):
                        found.append(path)
        return found

    def __len__(self) -> int:
        return len(self.embeddings)


def ti_hashes_text(embeddings: Iterable[Embedding]) -> str:
    """The "TI hashes" parameter value, "name: hash, name: hash" in first-use order.

    A1111 drops ':' and ',' from names so the value parses back; embeddings without a file have no hash.
    """
    parts = []
    for embedding in embeddings:
        if embedding.short_hash:
            name = embedding.name.replace(":", "").replace(",", "")
            parts.append(f"{name}: {embedding.short_hash}")
    return ", ".join(parts)
