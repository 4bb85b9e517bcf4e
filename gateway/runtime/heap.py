"""The garbage collector and a long-running server's heap.

A running gateway holds a few hundred thousand objects that live as long as the process (its
libraries' modules, the compiled plan); a webhook allocates a few hundred more that die with it.
CPython's collector counts allocations, and every so often scans everything it tracks, the
long-lived objects included: measured under load (docs/performance.md) a full pass took ~60 ms,
once per ~1,300 webhooks, ~9% of the CPU, plus the younger passes. ``gc.freeze()`` moves what
exists once the server has started out of the collector's sight, as the Python documentation
suggests for servers; reference counting still frees those objects as usual, only cycles among
them are no longer looked for.

So :func:`settle` runs at startup (``gateway serve``), and again after a reload once the
replaced plan's last request has finished (then with one full collection, for the replaced
plan's cycles if it had any, and the new plan frozen).
"""

from __future__ import annotations

import gc

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
