"""CLIP text conditioning: prompt chunks, emphasis, CLIP skip, textual-inversion embeddings, caching.

Public entry point: ``PromptEncoder`` (one per generation). See docs/CONDITIONING.md.
"""

from modules.conditioning.chunks import (
    CHUNK_LENGTH,
    Chunk,
    EmbeddingFix,
    EmbeddingMatcher,
    SpecialTokens,
    build_chunks,
    token_limit,
    tokenize_chunks,
)
from modules.conditioning.embeddings import (
    Embedding,
    EmbeddingDatabase,
    load_embedding_file,
    ti_hashes_text,
)
from modules.conditioning.emphasis import EMPHASIS_MODES, apply_emphasis
from modules.conditioning.encoder import Conditioning, PromptEncoder
from modules.conditioning.text_cache import TextCache

__all__ = [
    "CHUNK_LENGTH",
    "EMPHASIS_MODES",
    "Chunk",
    "Conditioning",
    "Embedding",
    "EmbeddingDatabase",
    "EmbeddingFix",
    "EmbeddingMatcher",
    "PromptEncoder",
    "SpecialTokens",
    "TextCache",
    "apply_emphasis",
    "build_chunks",
    "load_embedding_file",
    "ti_hashes_text",
    "token_limit",
    "tokenize_chunks",
]
