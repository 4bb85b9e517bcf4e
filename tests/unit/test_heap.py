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


def test_paused_turns_the_collector_off_inside_and_back_as_it_was():
    assert gc.isenabled()
    with heap.paused():
        assert not gc.isenabled()
        with heap.paused():  # nested
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with heap.paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_overlapping_pauses_from_two_threads_leave_the_collector_on():
    import threading

    first_in, second_done = threading.Event(), threading.Event()
    inside: list[bool] = []

    def first() -> None:
        with heap.paused():
            first_in.set()
            second_done.wait(5)  # the second pause begins and ends inside this one

    def second() -> None:
        first_in.wait(5)
        with heap.paused():
            pass
        inside.append(gc.isenabled())  # the first pause has not ended: still off
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert inside == [False] and gc.isenabled()


def test_a_load_runs_with_the_collector_paused_and_restores_it(tmp_path, monkeypatch):
    from gateway.compile import gateway_file

    seen: list[bool] = []
    real = gateway_file._load

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(gateway_file, "_load", spy)
    (tmp_path / "gateway.yaml").write_text("providers: {}\n")
    gateway_file.load(tmp_path / "gateway.yaml")
    assert seen == [False] and gc.isenabled()


def test_a_freezing_pause_freezes_when_the_last_pause_ends_and_before_the_collector_is_back():
    states: list[tuple[bool, int]] = []
    real_freeze = gc.freeze

    def freeze() -> None:  # what the collector's state is when the freeze happens
        states.append((gc.isenabled(), gc.get_freeze_count()))
        real_freeze()

    try:
        gc.unfreeze()
        gc.freeze = freeze  # type: ignore[assignment]
        with heap.paused():
            with heap.paused(freeze=True):
                kept = Node()
            assert states == [] and gc.get_freeze_count() == 0  # not while an outer pause runs
        assert len(states) == 1 and states[0][0] is False  # frozen, then the collector came back
        assert gc.isenabled() and gc.get_freeze_count() > 0
        gc.unfreeze()
        with heap.paused():
            Node()
        assert len(states) == 1 and gc.get_freeze_count() == 0  # a plain pause freezes nothing
        del kept
    finally:
        gc.freeze = real_freeze  # type: ignore[assignment]
        gc.unfreeze()


def test_a_kept_load_is_frozen_and_a_checked_one_is_not(tmp_path):
    from gateway.compile import gateway_file

    (tmp_path / "gateway.yaml").write_text("providers: {}\n")
    try:
        gc.unfreeze()
        gateway_file.load(tmp_path / "gateway.yaml")
        assert gc.get_freeze_count() == 0
        gateway_file.load(tmp_path / "gateway.yaml", keep=True)
        assert gc.get_freeze_count() > 0 and gc.isenabled()
    finally:
        gc.unfreeze()
