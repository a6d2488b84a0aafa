"""Text-encoder outputs kept across jobs: a prompt used again costs no text-encoder call.

A1111 keeps the last job's conditioning, keyed on the prompts, the checkpoint and the extra networks.
Here the key is what the encoder's output is computed from, so nothing else can make a hit stale:
- the chunks' token ids and the embedding vectors spliced into them (their bytes, not their names),
- the layer choice (CLIP skip, final norm, pooling) and which encoder of the model it is,
- the state of every weight of the text encoder: each tensor's identity, storage and in-place version
  counter. Patching a LoRA in (``param.copy_``), taking it out, moving or casting the model all change
  it, and the model's old entries are dropped. (A write through ``param.data`` bypasses the counter;
  code that edits weights that way must call ``TextCache.clear``. Weights made under
  ``torch.inference_mode`` have no counter at all: such a model is not cached.)
Entries live with their model (a weak reference): an unloaded model takes its entries with it.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import torch

from modules.conditioning.chunks import Chunk

CAPACITY = 64  # texts per model; an SD1 chunk's output is 77 x 768 floats (236 kB)


@dataclass
class _ModelEntries:
    state: tuple
    outputs: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)


class TextCache:
    """Encoder outputs per text-encoder model, least recently used dropped beyond ``capacity`` texts."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._models: weakref.WeakKeyDictionary[Any, _ModelEntries] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get_or_encode(self, model: Any, key: Hashable, encode: Callable[[], Any]) -> tuple[Any, bool]:
        """The cached output for ``key`` on ``model``'s current weights, else ``encode()``'s, stored;
        and whether it was computed now."""
        state = weights_state(model)
        if state is None:
            return encode(), True
        with self._lock:
            entries = self._models.get(model)
            if entries is None or entries.state != state:
                entries = self._models[model] = _ModelEntries(state)
            if key in entries.outputs:
                entries.outputs.move_to_end(key)
                return entries.outputs[key], False
        output = encode()
        with self._lock:
            entries.outputs[key] = output
            while len(entries.outputs) > self.capacity:
                entries.outputs.popitem(last=False)
        return output, True

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries.outputs) for entries in self._models.values())


def weights_state(model: torch.nn.Module) -> tuple | None:
    """Identity, storage, version counter, dtype and device of every weight and buffer of ``model``;
    None when a weight keeps no version counter (made under ``torch.inference_mode``): such a model's
    in-place changes cannot be seen, so its outputs are not kept."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_inference() for t in tensors):
        return None
    return tuple((id(t), t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)


def chunks_key(chunks: list[Chunk], encoder_index: int, choice: Hashable) -> tuple:
    """What one encoder's output for these chunks depends on, besides the weights."""
    rows = []
    for chunk in chunks:
        fixes = tuple(
            (fix.offset, _fingerprint(fix.embedding.vectors_for(encoder_index))) for fix in chunk.fixes
        )
        rows.append((tuple(chunk.tokens), fixes))
    return encoder_index, choice, tuple(rows)


def _fingerprint(vectors: torch.Tensor) -> tuple:
    data = vectors.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return tuple(vectors.shape), hashlib.blake2b(data, digest_size=16).hexdigest()
