"""heap.settle: a full collection, then everything left frozen out of later collections; a second
settle still frees what was frozen and has since become garbage (an unloaded model's cycles)."""

from __future__ import annotations

import gc
import weakref

from modules import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_settle_collects_garbage_then_freezes_the_survivors() -> None:
    garbage, kept = Node(), Node()
    gone = weakref.ref(garbage)
    del garbage
    heap.settle()
    assert gone() is None  # collected before the freeze, not frozen as garbage
    assert gc.get_freeze_count() > 0
    frozen = weakref.ref(kept)
    del kept
    gc.collect()
    assert frozen() is not None  # frozen: an ordinary collection no longer walks it
    heap.settle()
    assert frozen() is None  # settle looks at frozen objects again


def test_a_full_collection_after_settle_walks_only_new_objects() -> None:
    heap.settle()
    young = [Node() for _ in range(100)]
    tracked = len(gc.get_objects())  # what a collection walks: the frozen objects are not listed
    assert tracked < gc.get_freeze_count()
    del young


def test_freeze_keeps_what_exists_without_collecting() -> None:
    heap.settle()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    heap.freeze()  # no collection first: the cycle made since the last settle is frozen with the rest
    gc.collect()
    assert gone() is not None
    heap.settle()
    assert gone() is None
