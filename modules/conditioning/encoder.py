"""Prompt text -> conditioning tensors for one model and one generation's settings, with a cache.

``PromptEncoder`` is built per generation (model bundle, CLIP skip, emphasis, embeddings). It runs the
text encoder once per distinct parsed text and applies emphasis per group of texts the way A1111 does:
the texts of one prompt's schedule are weighted and mean-normalised together, chunk by chunk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from modules.conditioning.chunks import (
    Chunk,
    EmbeddingMatcher,
    SpecialTokens,
    build_chunks,
    token_limit,
)
from modules.conditioning.embeddings import Embedding, EmbeddingDatabase, ti_hashes_text
from modules.conditioning.emphasis import NONE, ORIGINAL, apply_emphasis, check_mode
from modules.conditioning.text_cache import TextCache, chunks_key
from modules.conditioning.text_model import (
    EncodedChunks,
    LayerChoice,
    encode_chunks,
    layer_count,
    token_embedding_width,
)
from modules.models.bundle import Arch, ModelBundle

log = logging.getLogger(__name__)

Parsed = tuple[tuple[str, float], ...]
Schedule = list[tuple[int, str]]
OPEN_CLIP_H_LAYERS = 24  # the full OpenCLIP ViT-H text tower; diffusers ships SD2's cut to 23 layers
EMPTY_TEXT: Parsed = (("", 1.0),)  # what parse_attention("") returns: A1111's filler chunk for short texts


@dataclass
class Conditioning:
    """Cross-attention conditioning ``[1, 77*k, dim]``; SDXL adds OpenCLIP-G's pooled output ``[1, 1280]``."""

    tokens: torch.Tensor
    pooled: torch.Tensor | None = None


@dataclass
class _TextEncoder:
    """One text encoder with the rules A1111 applies to it."""

    model: Any
    tokenizer: Any
    special: SpecialTokens
    choice: LayerChoice
    matcher: EmbeddingMatcher | None


@dataclass
class _RawText:
    """A text's chunks and unweighted encoder output, per text encoder (before emphasis)."""

    chunks: list[list[Chunk]]
    z: list[torch.Tensor]
    pooled: torch.Tensor | None
    token_count: int

    @property
    def chunk_count(self) -> int:
        return len(self.chunks[0])


@dataclass
class _Usage:
    """What a generation used that the parameters text reports."""

    embeddings: dict[str, Embedding] = field(default_factory=dict)
    emphasis_in_prompt: bool = False


class PromptEncoder:
    """Encodes prompts for one model bundle and one set of options; caches per distinct text.

    ``calls`` counts texts run through the text encoder (all chunks of a text go in one batch; SDXL's
    two encoders count as one), so a schedule with K distinct texts costs K calls. With a ``text_cache``
    shared across generations (the runtime's), a text encoded by an earlier job on the same weights
    costs none.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        clip_skip: int = 1,
        emphasis: str = ORIGINAL,
        embeddings: EmbeddingDatabase | None = None,
        comma_padding_backtrack: int = 20,
        sdxl_clip_l_skip: bool = False,
        text_cache: TextCache | None = None,
    ) -> None:
        if clip_skip < 1:
            raise ValueError(f"clip skip must be at least 1, got {clip_skip}")
        self.arch = bundle.arch
        self.emphasis = check_mode(emphasis)
        self.comma_padding_backtrack = comma_padding_backtrack
        self.calls = 0
        self.text_cache = text_cache
        self.skipped_embeddings: dict[str, str] = {}
        self._usage = _Usage()
        self._cache: dict[Parsed, _RawText] = {}
        usable = self._usable_embeddings(bundle, embeddings)
        choices = _layer_choices(bundle, clip_skip, sdxl_clip_l_skip)
        pads = _pad_ids(bundle.arch)
        self._encoders = [
            _TextEncoder(
                model=model,
                tokenizer=tokenizer,
                special=SpecialTokens.from_tokenizer(tokenizer, pad),
                choice=choice,
                matcher=EmbeddingMatcher(tokenizer, usable) if usable else None,
            )
            for model, tokenizer, choice, pad in zip(
                bundle.text_encoders, bundle.tokenizers, choices, pads, strict=True
            )
        ]

    # ----- public API -----

    def parse(self, text: str) -> Parsed:
        """The attention-syntax parse A1111 would use; with emphasis "None" the text stays literal."""
        if self.emphasis == NONE:
            return ((text, 1.0),)
        from modules.prompting import parse_attention  # lazy: the grammar module is optional for tests

        return tuple((piece, float(weight)) for piece, weight in parse_attention(text))

    def encode(self, text: str) -> Conditioning:
        """Conditioning for one prompt text in attention syntax (emphasis, BREAK, embedding names)."""
        return self.encode_schedule([(1, text)])[0][1]

    def encode_parsed(self, parsed: list[tuple[str, float]]) -> Conditioning:
        """Conditioning for an already parsed prompt (``parse_attention`` output)."""
        return self._condition_group([self._raw(_freeze(parsed))])[0]

    def encode_schedule(self, schedule: Schedule, negative: bool = False) -> list[tuple[int, Conditioning]]:
        """Conditioning per ``(end_step, text)`` entry of one prompt's schedule.

        The entries are weighted as one batch, like A1111 (see ``apply_emphasis``). For SDXL an empty
        negative prompt becomes all zeros, tokens and pooled, as A1111's SDXL conditioner does.
        """
        texts = [text for _, text in schedule]
        if not texts:
            raise ValueError("a prompt schedule needs at least one (end_step, text) entry")
        if negative and self.arch == Arch.SDXL and all(text == "" for text in texts):
            return [(end, self._zeros()) for end, _ in schedule]
        self._usage.emphasis_in_prompt |= any("(" in text or "[" in text for text in texts)
        conds = self._condition_group([self._raw(self.parse(text)) for text in texts])
        return [(end, cond) for (end, _), cond in zip(schedule, conds, strict=True)]

    def encode_schedules(
        self, schedules: list[Schedule], negative: bool = False
    ) -> list[list[tuple[int, Conditioning]]]:
        """``encode_schedule`` for each prompt of a batch; each distinct text is encoded once."""
        return [self.encode_schedule(schedule, negative) for schedule in schedules]

    def count_tokens(self, text: str) -> tuple[int, int]:
        """The UI counter for one prompt text: (tokens used, 75 x chunks), e.g. (12, 75) or (80, 150)."""
        first = self._encoders[0]
        _, count = build_chunks(
            first.tokenizer, self.parse(text), first.special, first.matcher, self.comma_padding_backtrack
        )
        return count, token_limit(count)

    def count_tokens_max(self, texts: list[str]) -> tuple[int, int]:
        """The counter for a prompt with several scheduled texts: A1111 shows the longest one."""
        return max((self.count_tokens(text) for text in texts), key=lambda counted: counted[0])

    def count_prompt_tokens(self, prompt: str, steps: int, is_negative: bool = False) -> tuple[int, int]:
        """The UI counter for a whole prompt: extra networks removed, AND split, every scheduled text."""
        from modules.prompting import texts_to_count

        return self.count_tokens_max(texts_to_count(prompt, steps, is_negative) or [""])

    @property
    def used_embeddings(self) -> list[Embedding]:
        """Embeddings that appeared in encoded prompts, in first-use order."""
        return list(self._usage.embeddings.values())

    @property
    def extra_generation_params(self) -> dict[str, str]:
        """Parameters-text entries this encoder's work adds: "TI hashes" and a non-default "Emphasis"."""
        params = {}
        hashes = ti_hashes_text(self.used_embeddings)
        if hashes:
            params["TI hashes"] = hashes
        # A1111 writes the mode only when it differs from the default and a prompt has brackets.
        if self.emphasis != ORIGINAL and self._usage.emphasis_in_prompt:
            params["Emphasis"] = self.emphasis
        return params

    # ----- internals -----

    def _usable_embeddings(self, bundle: ModelBundle, database: EmbeddingDatabase | None) -> list[Embedding]:
        if database is None:
            return []
        widths = [token_embedding_width(model) for model in bundle.text_encoders]
        usable = []
        for embedding in database.embeddings.values():
            two_part = isinstance(embedding.vectors, dict)
            if embedding.dim == sum(widths) and two_part == (len(widths) == 2):
                usable.append(embedding)
            else:
                note = f"vector size {embedding.dim} does not fit this model ({sum(widths)})"
                self.skipped_embeddings[embedding.name] = note
                log.info("Embedding %s skipped: %s", embedding.name, note)
        return usable

    def clear_cache(self) -> None:
        """Forget encoded texts (the text encoder's weights changed, e.g. a LoRA was applied)."""
        self._cache.clear()

    def _raw(self, parsed: Parsed) -> _RawText:
        cached = self._cache.get(parsed)
        if cached is None:
            cached = self._cache[parsed] = self._run_encoders(parsed)
        return cached

    def _run_encoders(self, parsed: Parsed) -> _RawText:
        chunks, zs, pooled, count, ran = [], [], None, 0, False
        for index, encoder in enumerate(self._encoders):
            encoder_chunks, count = build_chunks(
                encoder.tokenizer, parsed, encoder.special, encoder.matcher, self.comma_padding_backtrack
            )
            encoded, computed = self._encode(encoder, encoder_chunks, index)
            ran |= computed
            chunks.append(encoder_chunks)
            zs.append(encoded.z)
            if encoded.pooled is not None:
                pooled = encoded.pooled[:1]  # A1111 pools the first chunk only
        if len({len(c) for c in chunks}) != 1:
            raise RuntimeError("text encoders split the prompt into different chunk counts")
        self.calls += ran
        return _RawText(chunks=chunks, z=zs, pooled=pooled, token_count=count)

    def _encode(self, encoder: _TextEncoder, chunks: list[Chunk], index: int) -> tuple[EncodedChunks, bool]:
        """One encoder's output for ``chunks`` and whether it was computed (not found in the cache)."""

        def run() -> EncodedChunks:
            return encode_chunks(encoder.model, chunks, encoder.choice, index)

        if self.text_cache is None:
            return run(), True
        return self.text_cache.get_or_encode(encoder.model, chunks_key(chunks, index, encoder.choice), run)

    def _condition_group(self, raws: list[_RawText]) -> list[Conditioning]:
        chunk_count = max(raw.chunk_count for raw in raws)
        # A1111 pads shorter texts of a batch with encoded empty chunks, so every entry gets k chunks.
        filler = self._raw(EMPTY_TEXT) if any(r.chunk_count < chunk_count for r in raws) else None
        self._record_embeddings(raws, chunk_count)
        per_encoder = []
        for index in range(len(self._encoders)):
            columns = [self._weighted_column(raws, filler, index, c) for c in range(chunk_count)]
            per_encoder.append(torch.cat(columns, dim=1))
        tokens = torch.cat(per_encoder, dim=-1)
        return [Conditioning(tokens=tokens[i : i + 1], pooled=raw.pooled) for i, raw in enumerate(raws)]

    def _weighted_column(
        self, raws: list[_RawText], filler: _RawText | None, encoder: int, chunk: int
    ) -> torch.Tensor:
        """Chunk ``chunk`` of every text in the group, weighted together as A1111's batch is."""
        sources = [(raw, chunk) if chunk < raw.chunk_count else (filler, 0) for raw in raws]
        z = torch.stack([source.z[encoder][c] for source, c in sources])
        weights = torch.tensor([source.chunks[encoder][c].weights for source, c in sources])
        return apply_emphasis(z, weights, self.emphasis)

    def _record_embeddings(self, raws: list[_RawText], chunk_count: int) -> None:
        for c in range(chunk_count):
            for raw in raws:
                if c < raw.chunk_count:
                    for fix in raw.chunks[0][c].fixes:
                        self._usage.embeddings.setdefault(fix.embedding.name, fix.embedding)

    def _zeros(self) -> Conditioning:
        raw = self._raw(EMPTY_TEXT)
        tokens = torch.cat(raw.z, dim=-1)[:1]
        pooled = raw.pooled
        return Conditioning(
            tokens=torch.zeros_like(tokens), pooled=None if pooled is None else torch.zeros_like(pooled)
        )


def _freeze(parsed: list[tuple[str, float]] | Parsed) -> Parsed:
    return tuple((text, float(weight)) for text, weight in parsed)


def _layer_choices(bundle: ModelBundle, clip_skip: int, sdxl_clip_l_skip: bool) -> list[LayerChoice]:
    """Which hidden state each encoder contributes, per A1111 1.10."""
    if bundle.arch == Arch.SD1:
        # hidden_states[-N] then the final LayerNorm; N = 1 is exactly last_hidden_state
        return [LayerChoice(from_end=clip_skip, final_norm=True)]
    if bundle.arch == Arch.SD2:
        # A1111 ignores CLIP skip for SD2: always OpenCLIP's penultimate layer + ln_final. A diffusers
        # SD2 encoder already lacks the last layer, so its last layer *is* that penultimate one.
        full = layer_count(bundle.text_encoders[0]) == OPEN_CLIP_H_LAYERS
        return [LayerChoice(from_end=2 if full else 1, final_norm=True)]
    # SDXL: penultimate states without final norm from both; CLIP skip reaches CLIP-L only when the
    # "sdxl_clip_l_skip" option is on (off by default in A1111).
    clip_l = LayerChoice(from_end=clip_skip if sdxl_clip_l_skip else 2, final_norm=False)
    return [clip_l, LayerChoice(from_end=2, final_norm=False, pooled=True)]


def _pad_ids(arch: Arch) -> list[int | None]:
    """A1111's id_pad: EOS for OpenAI CLIP-L (None = use EOS), 0 ("!") for OpenCLIP encoders."""
    if arch == Arch.SD1:
        return [None]
    if arch == Arch.SD2:
        return [0]
    return [None, 0]
