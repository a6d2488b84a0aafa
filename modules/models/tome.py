"""Token merging (ToMe for Stable Diffusion): fewer tokens through the UNet's self-attention.

Before each self-attention of the highest-resolution transformer blocks, the most similar image tokens
are averaged into one ("merged") and, after it, the result is copied back to every token that was merged
("unmerged"), so the rest of the UNet sees every token. Self-attention costs the square of the token
count, so merging half the tokens makes those layers about four times cheaper; the image changes a little
(the "Token merging ratio" setting trades that for speed, as in A1111).

The matching is bipartite soft matching on a fixed grid, as A1111 runs it (its tomesd options: ``sx = sy =
2``, no random placement, attention only, highest resolution only): the image tokens are cut into 2x2
cells, the first token of each cell is a destination, the others are sources, and the ``r`` sources most
similar (cosine) to their best destination are averaged into it. Deterministic, per image of the batch.

Written here rather than taken from the ``tomesd`` package: tomesd replaces diffusers' transformer block
classes with copies of an older ``forward`` that today's diffusers no longer matches; this module wraps
only the attention processor, which diffusers keeps as a public, swappable interface.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

STRIDE = 2  # cells of STRIDE x STRIDE tokens, one destination each (A1111: sx = sy = 2)
MAX_DOWNSAMPLE = 1  # merge only where the latent is at full resolution (A1111's default)

Merge = Callable[[torch.Tensor], torch.Tensor]


def _destinations(height: int, width: int, device: torch.device) -> torch.Tensor:
    """True at the first token of every full STRIDE x STRIDE cell; tokens of partial cells at the edges
    stay sources."""
    grid = torch.zeros(height, width, dtype=torch.bool, device=device)
    cells_h, cells_w = height // STRIDE, width // STRIDE
    grid[: cells_h * STRIDE : STRIDE, : cells_w * STRIDE : STRIDE] = True
    return grid.flatten()


def bipartite_merge(tokens: torch.Tensor, height: int, width: int, ratio: float) -> tuple[Merge, Merge]:
    """The merge and unmerge functions for ``tokens`` ([batch, height*width, channels]) at ``ratio``.

    ``merge`` maps [batch, N, C] to [batch, N - r, C] (the unmerged sources, then the destinations, each
    the mean of itself and the sources merged into it); ``unmerge`` maps back to [batch, N, C].
    """
    batch, count, _ = tokens.shape
    is_destination = _destinations(height, width, tokens.device)
    destination_index = is_destination.nonzero().squeeze(1)
    source_index = (~is_destination).nonzero().squeeze(1)
    r = min(int(count * ratio), len(source_index))
    if r <= 0:
        return (lambda x: x), (lambda x: x)

    with torch.no_grad():
        metric = tokens / tokens.norm(dim=-1, keepdim=True)
        similarity = metric[:, source_index] @ metric[:, destination_index].transpose(1, 2)
        best, best_destination = similarity.max(dim=-1)  # per source: its closest destination
        order = best.argsort(dim=-1, descending=True)  # sources, most similar first
    merged_sources, kept_sources = order[:, :r], order[:, r:]
    merged_into = best_destination.gather(1, merged_sources)  # [batch, r]: destination of each merged

    def pick(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

    def merge(x: torch.Tensor) -> torch.Tensor:
        sources, destinations = x[:, source_index], x[:, destination_index]
        moved = pick(sources, merged_sources)
        index = merged_into.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        destinations = destinations.scatter_reduce(1, index, moved, reduce="mean", include_self=True)
        return torch.cat([pick(sources, kept_sources), destinations], dim=1)

    kept_positions = source_index[kept_sources]  # [batch, N_src - r]: token positions in the image
    merged_positions = source_index[merged_sources]

    def unmerge(x: torch.Tensor) -> torch.Tensor:
        kept_count = kept_sources.shape[1]
        kept, destinations = x[:, :kept_count], x[:, kept_count:]
        channels = x.shape[-1]
        out = x.new_empty(batch, count, channels)
        out[:, destination_index] = destinations
        out.scatter_(1, kept_positions.unsqueeze(-1).expand(-1, -1, channels), kept)
        out.scatter_(
            1, merged_positions.unsqueeze(-1).expand(-1, -1, channels), pick(destinations, merged_into)
        )
        return out

    return merge, unmerge


class MergedSelfAttention:
    """An attention processor that merges tokens around the processor it wraps (self-attention only)."""

    def __init__(self, inner: Any, ratio: float, latent_size: Callable[[], tuple[int, int]]) -> None:
        self.inner = inner
        self.ratio = ratio
        self.latent_size = latent_size

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states=None, *args, **kwargs):
        grid = (
            None
            if encoder_hidden_states is not None or hidden_states.ndim != 3
            else self._grid(hidden_states)
        )
        if grid is None:
            return self.inner(attn, hidden_states, encoder_hidden_states, *args, **kwargs)
        merge, unmerge = bipartite_merge(hidden_states, *grid, self.ratio)
        return unmerge(self.inner(attn, merge(hidden_states), None, *args, **kwargs))

    def _grid(self, hidden_states: torch.Tensor) -> tuple[int, int] | None:
        """(height, width) in tokens when these tokens are at a merged resolution, else None."""
        height, width = self.latent_size()
        count = hidden_states.shape[1]
        downsample = round(math.sqrt(height * width / count))
        if downsample > MAX_DOWNSAMPLE or downsample < 1:
            return None
        size = (math.ceil(height / downsample), math.ceil(width / downsample))
        return size if size[0] * size[1] == count else None


@contextmanager
def token_merging(unet: torch.nn.Module, ratio: float) -> Iterator[None]:
    """Merge tokens in ``unet``'s self-attention for the duration of the block; exactly as before after.

    Only the processors of the self-attention layers (``attn1``) are swapped, and swapped back in
    ``finally``: the caller holds the model (one sampling pass of a queued job), so nobody else sees them.
    """
    if ratio <= 0:
        yield
        return
    size = {"latent": (0, 0)}

    def remember_size(_module: Any, args: tuple, kwargs: dict) -> None:
        sample = args[0] if args else kwargs["sample"]
        size["latent"] = (int(sample.shape[-2]), int(sample.shape[-1]))

    layers = [
        module
        for name, module in unet.named_modules()
        if name.endswith("attn1") and hasattr(module, "processor")
    ]
    originals = [layer.processor for layer in layers]
    hook = unet.register_forward_pre_hook(remember_size, with_kwargs=True)
    try:
        for layer, processor in zip(layers, originals, strict=True):
            layer.set_processor(MergedSelfAttention(processor, ratio, lambda: size["latent"]))
        yield
    finally:
        hook.remove()
        for layer, processor in zip(layers, originals, strict=True):
            layer.set_processor(processor)
