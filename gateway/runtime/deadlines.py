"""Deadlines for many concurrent webhooks, with one event loop timer instead of one each.

``async with deadlines.at(when):`` behaves as ``asyncio.timeout_at(when)``: when the loop's clock
reaches ``when`` the task is cancelled, and the block raises :class:`TimeoutError` (a cancellation
from elsewhere stays a cancellation). Every webhook sets two (its body must arrive within
``--body-timeout``, its steps finish within the provider's ``deadline``), and each
``asyncio.timeout`` creates and cancels a loop timer: with uvloop that was ~7 µs, 3-6% of a
webhook's time (docs/performance.md). Here a deadline is an entry in a heap, and one timer is set
for the earliest deadline still pending; a webhook that finishes marks its entry done and leaves
the timer alone. Entries of finished webhooks are dropped from the top of the heap as new ones
arrive, and the heap is rebuilt without them whenever they outnumber the pending ones, so it
holds at most about twice the webhooks in flight (a block that has ended keeps no reference to its
task). The timer fires exactly when the earliest pending deadline falls due, as
``asyncio.timeout``'s would.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from types import TracebackType


class _Clock:
    """The pending deadlines of one event loop and its one timer."""

    __slots__ = ("_dead", "_heap", "_loop", "_order", "_timer", "_timer_when")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, Within]] = []
        self._dead = 0  # entries in the heap whose block has ended
        self._order = itertools.count()  # equal deadlines in the order they were set
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = float("inf")

    def add(self, entry: Within) -> None:
        heap = self._heap
        while heap and heap[0][2].done:  # ended blocks' entries, oldest first
            heapq.heappop(heap)[2].in_heap = False
            self._dead -= 1
        heapq.heappush(heap, (entry.when, next(self._order), entry))
        entry.in_heap = True
        if entry.when < self._timer_when:
            self._arm(entry.when)

    def ended(self, entry: Within) -> None:
        """A block has ended before its deadline. Its entry stays in the heap until it reaches
        the top, unless ended entries outnumber the pending ones: then the heap is rebuilt without
        them (deadlines of different lengths interleave, so an ended entry can sit under pending
        ones for as long as its own deadline; the heap stays within twice the blocks in flight)."""
        if not entry.in_heap:
            return
        self._dead += 1
        if self._dead > 32 and 2 * self._dead > len(self._heap):
            pending = []
            for item in self._heap:
                if item[2].done:
                    item[2].in_heap = False
                else:
                    pending.append(item)
            heapq.heapify(pending)
            self._heap, self._dead = pending, 0

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer, self._timer_when = None, float("inf")
        heap, now = self._heap, self._loop.time()
        while heap and (heap[0][2].done or heap[0][0] <= now):
            entry = heapq.heappop(heap)[2]
            entry.in_heap = False
            if entry.done:
                self._dead -= 1
            else:
                entry.expire()
        if heap:
            self._arm(heap[0][0])


_clocks: dict[asyncio.AbstractEventLoop, _Clock] = {}


def _clock(loop: asyncio.AbstractEventLoop) -> _Clock:
    clock = _clocks.get(loop)
    if clock is None:
        for closed in [known for known in _clocks if known.is_closed()]:
            del _clocks[closed]
        clock = _clocks[loop] = _Clock(loop)
    return clock


class Within:
    """The context manager :func:`at` returns (mirrors ``asyncio.Timeout``'s rules)."""

    __slots__ = ("_cancelling", "_clock", "_expired", "_loop", "_task", "done", "in_heap", "when")

    def __init__(self, when: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.when = when
        self._loop = loop
        self.done = False  # the block has ended, or its deadline passed
        self.in_heap = False
        self._expired = False
        self._clock: _Clock | None = None
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> Within:
        loop = self._loop or asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("deadlines.at() must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        if self.when <= loop.time():
            loop.call_soon(self._late)  # already past: as asyncio.timeout_at, on the next iteration
        else:
            self._clock = _clock(loop)
            self._clock.add(self)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        task, self._task = self._task, None  # an entry waiting in the heap keeps nothing of the request alive
        if not self.done:
            self.done = True
            if self._clock is not None:
                self._clock.ended(self)
        if self._expired and task is not None:
            if task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
                raise TimeoutError from exc

    def _late(self) -> None:
        if not self.done:
            self.expire()

    def expire(self) -> None:
        self.done = True
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    @property
    def expired(self) -> bool:
        return self._expired


def at(when: float, loop: asyncio.AbstractEventLoop | None = None) -> Within:
    """A deadline at ``when`` on the running loop's clock (``loop.time()``). ``loop``: the running
    loop, when the caller has it (asking asyncio for it is a system call)."""
    return Within(when, loop)
