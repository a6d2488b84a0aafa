"""Turning a parsed prompt into 77-token chunks with per-token weights and embedding placements.

Reproduces A1111 1.10's ``tokenize_line`` token for token (BREAK, comma backtrack, embedding moves,
the token count the UI shows), because the chunk layout decides what the UNet sees.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modules.conditioning.embeddings import Embedding

CHUNK_LENGTH = 75  # text tokens per chunk; each chunk is encoded as BOS + 75 + EOS = 77
BREAK = ("BREAK", -1.0)  # parse_attention's marker for the BREAK keyword
FIX_PLACEHOLDER_ID = 0  # A1111 puts token 0 where embedding vectors go (overwritten before the transformer)


@dataclass(frozen=True)
class SpecialTokens:
    """Ids framing a chunk. ``pad`` fills after the text: EOS itself for CLIP-L, 0 ("!") for OpenCLIP."""

    bos: int
    eos: int
    pad: int
    comma: int | None

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, pad: int | None = None) -> SpecialTokens:
        eos = int(tokenizer.eos_token_id)
        return cls(
            bos=int(tokenizer.bos_token_id),
            eos=eos,
            pad=eos if pad is None else pad,
            comma=tokenizer.get_vocab().get(",</w>"),
        )


@dataclass(frozen=True)
class EmbeddingFix:
    """Embedding vectors to place at ``offset`` (a position in the 77-token chunk; BOS is position 0)."""

    offset: int
    embedding: Embedding


@dataclass
class Chunk:
    """One encoder input: 77 token ids, 77 weights (1.0 at BOS/EOS/padding) and embedding placements."""

    tokens: list[int]
    weights: list[float]
    fixes: list[EmbeddingFix] = field(default_factory=list)


class EmbeddingMatcher:
    """Finds embedding names in a token stream by their token ids, longest name first (A1111's rule)."""

    def __init__(self, tokenizer: Any, embeddings: Iterable[Embedding]) -> None:
        self._by_first_id: dict[int, list[tuple[list[int], Embedding]]] = {}
        for embedding in embeddings:
            ids = tokenize(tokenizer, [embedding.name])[0]
            if ids:
                self._by_first_id.setdefault(ids[0], []).append((ids, embedding))
        for candidates in self._by_first_id.values():
            # stable sort: among names with equal token length the one loaded first wins, as in A1111
            candidates.sort(key=lambda entry: len(entry[0]), reverse=True)

    def match(self, tokens: Sequence[int], position: int) -> tuple[Embedding, int] | None:
        """The embedding whose name starts at ``position`` and how many tokens the name spans."""
        for ids, embedding in self._by_first_id.get(tokens[position], ()):
            if list(tokens[position : position + len(ids)]) == ids:
                return embedding, len(ids)
        return None


def tokenize(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of each text without BOS/EOS and without truncation."""
    if not texts:
        return []
    return tokenizer(texts, truncation=False, add_special_tokens=False, verbose=False)["input_ids"]


class _ChunkBuilder:
    """The state of A1111's chunking loop: the open chunk, the finished ones and the running count."""

    def __init__(self, special: SpecialTokens, comma_padding_backtrack: int) -> None:
        self.special = special
        self.backtrack = comma_padding_backtrack
        self.chunks: list[Chunk] = []
        self.token_count = 0
        self._reset()

    def _reset(self) -> None:
        self.tokens: list[int] = []
        self.weights: list[float] = []
        self.fixes: list[EmbeddingFix] = []
        self.last_comma = -1

    def close(self, is_last: bool = False) -> None:
        # A1111 counts a closed chunk as a full 75 and only the final chunk by its real length.
        self.token_count += len(self.tokens) if is_last else CHUNK_LENGTH
        self.chunks.append(self._framed())
        self._reset()

    def _framed(self) -> Chunk:
        s = self.special
        padding = CHUNK_LENGTH - len(self.tokens)
        tokens = [s.bos, *self.tokens, *[s.eos] * padding, s.eos]
        if s.pad != s.eos:
            # A1111 (OpenCLIP only): everything after the first EOS, a literal "<|endoftext|>" in the
            # text included, becomes the pad id. With CLIP-L (pad == EOS) it re-pads nothing, so the
            # text after a literal "<|endoftext|>" stays in the chunk.
            first_eos = tokens.index(s.eos)
            tokens[first_eos + 1 :] = [s.pad] * (len(tokens) - first_eos - 1)
        weights = [1.0, *self.weights, *[1.0] * (padding + 1)]
        fixes = [EmbeddingFix(fix.offset + 1, fix.embedding) for fix in self.fixes]
        return Chunk(tokens=tokens, weights=weights, fixes=fixes)

    def make_room(self, token: int) -> None:
        """A1111's checks before each token position: note commas, backtrack, close a full chunk."""
        if token == self.special.comma:
            self.last_comma = len(self.tokens)
        elif self._should_backtrack():
            self._move_after_last_comma()
        if len(self.tokens) == CHUNK_LENGTH:
            self.close()

    def append(self, token: int, weight: float) -> None:
        self.tokens.append(token)
        self.weights.append(weight)

    def _should_backtrack(self) -> bool:
        return (
            self.backtrack != 0
            and len(self.tokens) == CHUNK_LENGTH
            and self.last_comma != -1
            and len(self.tokens) - self.last_comma <= self.backtrack
        )

    def _move_after_last_comma(self) -> None:
        cut = self.last_comma + 1
        moved_tokens, moved_weights = self.tokens[cut:], self.weights[cut:]
        del self.tokens[cut:], self.weights[cut:]
        # A1111 quirk kept for reproducibility: fixes are NOT moved with their tokens, so an embedding
        # after the last comma writes its vectors into the old chunk's padding and the new chunk sees
        # placeholder tokens.
        self.close()
        self.tokens, self.weights = moved_tokens, moved_weights

    def place_embedding(self, embedding: Embedding, weight: float) -> None:
        count = embedding.vector_count
        if count > CHUNK_LENGTH:
            raise ValueError(f"embedding {embedding.name!r} has {count} vectors; at most 75 fit in a chunk")
        if len(self.tokens) + count > CHUNK_LENGTH:
            self.close()  # an embedding never straddles two chunks
        self.fixes.append(EmbeddingFix(len(self.tokens), embedding))
        self.tokens.extend([FIX_PLACEHOLDER_ID] * count)
        self.weights.extend([weight] * count)

    def finish(self) -> list[Chunk]:
        # an empty prompt is still one (empty) chunk
        if self.tokens or not self.chunks:
            self.close(is_last=True)
        return self.chunks


def build_chunks(
    tokenizer: Any,
    parsed: Sequence[tuple[str, float]],
    special: SpecialTokens | None = None,
    matcher: EmbeddingMatcher | None = None,
    comma_padding_backtrack: int = 20,
) -> tuple[list[Chunk], int]:
    """Chunks for a parsed prompt plus A1111's token count (what the UI counter shows)."""
    special = special or SpecialTokens.from_tokenizer(tokenizer)
    builder = _ChunkBuilder(special, comma_padding_backtrack)
    pieces = [(text, float(weight)) for text, weight in parsed]
    for tokens, (text, weight) in zip(tokenize(tokenizer, [text for text, _ in pieces]), pieces, strict=True):
        if (text, weight) == BREAK:
            builder.close()
            continue
        _add_piece(builder, tokens, weight, matcher)
    chunks = builder.finish()
    return chunks, builder.token_count


def _add_piece(
    builder: _ChunkBuilder, tokens: list[int], weight: float, matcher: EmbeddingMatcher | None
) -> None:
    position = 0
    while position < len(tokens):
        builder.make_room(tokens[position])
        found = matcher.match(tokens, position) if matcher else None
        if found is None:
            builder.append(tokens[position], weight)
            position += 1
        else:
            embedding, name_length = found
            builder.place_embedding(embedding, weight)
            position += name_length


def tokenize_chunks(
    tokenizer: Any,
    parsed: Sequence[tuple[str, float]],
    special: SpecialTokens | None = None,
    matcher: EmbeddingMatcher | None = None,
    comma_padding_backtrack: int = 20,
) -> list[Chunk]:
    """The chunks of a parsed prompt (``[(text, weight), ...]`` with ``("BREAK", -1.0)`` markers)."""
    return build_chunks(tokenizer, parsed, special, matcher, comma_padding_backtrack)[0]


def token_limit(token_count: int) -> int:
    """The counter's denominator: 75 per chunk, at least one chunk ("0/75", "80/150")."""
    return math.ceil(max(token_count, 1) / CHUNK_LENGTH) * CHUNK_LENGTH
