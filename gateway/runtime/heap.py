"""The garbage collector and a long-running server's heap.

A running gateway holds a few hundred thousand objects that live as long as the process (its
libraries' modules, the compiled plan); a webhook allocates a few hundred more that die with it.
CPython's collector counts allocations, and every so often scans everything it tracks, the
long-lived objects included: measured under load (docs/performance.md) a full pass took ~60 ms,
once per ~1,300 webhooks, ~9% of the CPU, plus the younger passes. ``gc.freeze()`` moves what
exists once the server has started out of the collector's sight, as the Python documentation
suggests for servers; reference counting still frees those objects as usual, only cycles among
them are no longer looked for.

Loading a plan makes no cyclic garbage either, but allocates a great deal that lives on: the
collector's passes over that growing heap were ~40% of the time to load 500 mappings (2.20 s
against 1.28 s without them, on the benchmark's machine). So a load runs with the collector
:func:`paused`.

:func:`settle` runs at startup (``gateway serve``), and again after a reload once the
replaced plan's last request has finished (then with one full collection, for the replaced
plan's cycles if it had any, and the new plan frozen).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

# Tracked allocations (less deallocations) between two passes over the youngest objects; 700 by
# default. Each pass scans what is alive and young then: about the webhooks in flight, whatever
# the threshold, so fewer passes cost less in all. Garbage in cycles (the hot path makes none:
# tests/test_hot_path_garbage.py) waits a little longer to be collected.
YOUNG_THRESHOLD = 10_000


def settle(*, collect: bool = False) -> None:
    """Freeze what exists now out of the collector's scans. ``collect``: first unfreeze what an
    earlier settle froze and collect garbage (after a reload: a replaced plan's cycles, if it had
    any). At startup there is nothing to collect (a loaded plan leaves no cycles: 0 objects
    found, in 0.24 s with 500 mappings), so startup does not pay for a full pass."""
    if collect:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


_pause_lock = threading.Lock()
_pauses = 0
_resume = False
_freeze = False


@contextlib.contextmanager
def paused(*, freeze: bool = False) -> Iterator[None]:
    """The collector off for what runs inside (a plan being loaded), then as it was before. Nested
    or concurrent pauses (a reload's load in a thread while another runs): it comes back when the
    last one ends, and only if it was on when the first began. Reference counting frees as usual
    meanwhile; cycles made inside wait for the next pass after it.

    ``freeze``: what exists when the last pause ends is frozen (:func:`settle` without its
    threshold) before the collector comes back, for a plan the process keeps (``gateway
    serve``): otherwise the collector's first passes scan all it allocated (a few hundred
    thousand objects with 500 mappings, ~5% of such a startup) just before :func:`settle`
    freezes them anyway."""
    global _pauses, _resume, _freeze
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            _freeze = _freeze or freeze
            if _pauses == 0:
                if _freeze:
                    _freeze = False
                    gc.freeze()
                if _resume:
                    gc.enable()
