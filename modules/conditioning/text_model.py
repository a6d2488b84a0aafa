"""Running a transformers CLIP text model on chunks: embedding splicing, layer choice and pooling.

The forward pass is written out here (token embedding -> splice -> positions -> layers) instead of
hooking the model, so that two requests sharing one model never see each other's embeddings and the
layers after the chosen hidden state are not computed. Tests compare it with the model's own forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from modules.conditioning.chunks import Chunk


@dataclass(frozen=True)
class LayerChoice:
    """Which hidden state becomes the conditioning.

    ``from_end`` counts like A1111's CLIP skip (1 = the last layer's output); ``final_norm`` applies the
    model's final LayerNorm to it; ``pooled`` also returns the projected EOS feature (SDXL's OpenCLIP-G).
    """

    from_end: int = 1
    final_norm: bool = True
    pooled: bool = False


@dataclass
class EncodedChunks:
    """Unweighted output for k chunks: ``z`` ``[k, 77, C]``; ``pooled`` ``[k, P]`` when asked for."""

    z: torch.Tensor
    pooled: torch.Tensor | None


def inner_model(model: Any) -> Any:
    """The ``CLIPTextModel`` holding embeddings/encoder/final norm (``WithProjection`` wraps one)."""
    return getattr(model, "text_model", model)


def token_embedding_width(model: Any) -> int:
    return int(inner_model(model).embeddings.token_embedding.embedding_dim)


def layer_count(model: Any) -> int:
    return len(inner_model(model).encoder.layers)


def encode_chunks(
    model: Any, chunks: list[Chunk], choice: LayerChoice, encoder_index: int = 0
) -> EncodedChunks:
    """Encode chunks as one batch; ``encoder_index`` picks the SDXL half of two-part embeddings."""
    from transformers.masking_utils import create_causal_mask  # heavy: imported on first use

    text = inner_model(model)
    layers = text.encoder.layers
    if not 1 <= choice.from_end <= len(layers) + 1:
        raise ValueError(f"clip skip {choice.from_end} needs at least {choice.from_end - 1} layers")
    device = text.embeddings.token_embedding.weight.device
    ids = torch.tensor([chunk.tokens for chunk in chunks], dtype=torch.long, device=device)
    with torch.no_grad():
        embeds = _spliced_token_embeddings(text, ids, chunks, encoder_index)
        hidden = text.embeddings(inputs_embeds=embeds)
        mask = create_causal_mask(
            config=text.config, inputs_embeds=hidden, attention_mask=None, past_key_values=None
        )
        # hidden state i (0 = embeddings) is what model(output_hidden_states=True).hidden_states[i] holds
        wanted = len(layers) + 1 - choice.from_end
        needed = len(layers) if choice.pooled else wanted
        states = [hidden]
        for layer in layers[:needed]:
            states.append(layer(states[-1], mask, is_causal=True))
        z = states[wanted]
        if choice.final_norm:
            z = text.final_layer_norm(z)
        pooled = _pooled(model, text, states[-1], ids) if choice.pooled else None
    return EncodedChunks(z=z, pooled=pooled)


def _spliced_token_embeddings(
    text: Any, ids: torch.Tensor, chunks: list[Chunk], encoder_index: int
) -> torch.Tensor:
    embeds = text.embeddings.token_embedding(ids)
    for row, chunk in enumerate(chunks):
        for fix in chunk.fixes:
            vectors = fix.embedding.vectors_for(encoder_index).to(embeds.device, embeds.dtype)
            embeds[row, fix.offset : fix.offset + vectors.shape[0]] = vectors
    return embeds


def _pooled(model: Any, text: Any, last: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """OpenCLIP's pooled output: final-normed feature at the first EOS, through the text projection."""
    normed = text.final_layer_norm(last)
    # first EOS = argmax of ids, as OpenCLIP does: EOS has the highest id and argmax returns the first
    eos_positions = ids.argmax(dim=-1)
    features = normed[torch.arange(ids.shape[0], device=ids.device), eos_positions]
    return model.text_projection(features)
