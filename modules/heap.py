"""Python's cyclic garbage collector, kept from pausing the server.

A full collection walks every object the collector tracks, and once the app has started that is over
half a million (torch, Gradio's blocks, transformers, the model): about 300 ms on these machines, during
which no thread runs Python, so the event loop answers nothing and /progress stalls. The objects that
exist once start-up is over live as long as the process, so they are frozen out of later collections
(``gc.freeze``, CPython's own tool for this); collections then walk only what requests create.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect everything once (frozen objects too: a model unloaded since the last freeze may hold
    cycles), then freeze what is left. One full pass; call it when a pause is expected anyway (end of
    start-up, a model unload); after a load, ``freeze`` is enough."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def freeze() -> None:
    """Freeze what exists now without collecting first (no pause): for objects made after the last
    ``settle`` that live on, such as a freshly loaded model."""
    gc.freeze()
