"""runtime.heap.settle: what exists when the server has started leaves the collector's scans, and a
later settle (after a reload) still collects the cycles of what was frozen before."""

from __future__ import annotations

import gc
import weakref

import pytest

from gateway.runtime import heap

pytestmark = pytest.mark.unit


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_settle_freezes_the_heap_and_a_collecting_settle_collects_what_was_frozen_and_died():
    saved = gc.get_threshold()
    try:
        plan = Node()
        alive = weakref.ref(plan)
        heap.settle()
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
        del plan  # the old plan after a reload: a cycle among frozen objects
        gc.collect()
        assert alive() is not None  # frozen: a collection does not look at it
        heap.settle()
        assert alive() is not None  # a settle without collecting leaves the frozen alone
        heap.settle(collect=True)
        assert alive() is None  # unfrozen, collected, and the rest frozen again (after a reload)
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
