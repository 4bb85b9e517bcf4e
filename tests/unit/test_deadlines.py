"""``deadlines.at`` behaves as ``asyncio.timeout_at`` (one loop timer for all of them, docs/performance.md)."""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.runtime import deadlines

pytestmark = pytest.mark.unit


def _run(coro):
    return asyncio.run(coro)


def test_a_block_past_its_deadline_raises_timeout_error_and_one_in_time_returns():
    async def main():
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with deadlines.at(loop.time() + 0.05) as within:
                await asyncio.sleep(5)
        assert within.expired and 0.04 <= loop.time() - started < 1.0
        async with deadlines.at(loop.time() + 5) as within:
            await asyncio.sleep(0.01)
        assert not within.expired

    _run(main())


def test_a_deadline_already_past_cancels_at_the_first_await():
    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with deadlines.at(loop.time() - 1):
                await asyncio.sleep(1)

    _run(main())


def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    async def main():
        loop = asyncio.get_running_loop()

        async def guarded():
            async with deadlines.at(loop.time() + 10):
                await asyncio.sleep(10)

        task = asyncio.create_task(guarded())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    _run(main())


def test_many_deadlines_in_any_order_each_fire_at_its_own_time_and_finished_ones_never():
    """200 concurrent blocks with deadlines in random order, half finishing before theirs: each
    that outlives its deadline times out no earlier than it and close after, none that finished
    is cancelled, and the heap does not keep the finished ones.

    (The finishing half yields a few times and ends, the other half waits for what never comes:
    which half a block is in does not depend on how busy the machine is. Deadlines start at 0.2 s,
    so a loaded machine's pauses cannot make one pass before its block has run; "close after" is
    within a second.)"""

    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        rng = random.Random(7)
        results = {}
        never = asyncio.Event()

        async def one(i, limit):
            try:
                async with deadlines.at(start + limit):
                    if i % 2:
                        for _ in range(3):
                            await asyncio.sleep(0)
                    else:
                        await never.wait()
                results[i] = ("finished", loop.time() - start, limit)
            except TimeoutError:
                results[i] = ("timed out", loop.time() - start, limit)

        await asyncio.gather(*[one(i, rng.uniform(0.2, 0.5)) for i in range(200)])
        for i, (outcome, elapsed, limit) in results.items():
            if i % 2:
                assert outcome == "finished", (i, elapsed, limit)
            else:
                assert outcome == "timed out" and limit <= elapsed < limit + 1.0, (i, elapsed, limit)
        clock = deadlines._clock(loop)
        async with deadlines.at(loop.time() + 10):  # a new deadline drops the finished ones above it
            pass
        assert len(clock._heap) <= 1

    _run(main())


def test_an_earlier_deadline_set_after_a_later_one_still_fires_on_time():
    async def main():
        loop = asyncio.get_running_loop()

        async def long_one():
            async with deadlines.at(loop.time() + 30):
                await asyncio.sleep(30)

        background = asyncio.create_task(long_one())
        await asyncio.sleep(0)
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with deadlines.at(loop.time() + 0.05):
                await asyncio.sleep(5)
        assert loop.time() - started < 1.0
        background.cancel()
        with pytest.raises(asyncio.CancelledError):
            await background

    _run(main())


def test_ended_blocks_do_not_pile_up_under_longer_deadlines_nor_keep_their_task():
    """Short and long deadlines interleaved (a body's and a webhook's): the long ones' entries
    would stay under the short ones' for as long as their deadline, holding their requests."""

    async def main():
        loop = asyncio.get_running_loop()
        clock = None
        for i in range(2000):
            async with deadlines.at(loop.time() + (10 if i % 2 else 20)) as within:
                pass
            assert within._task is None  # nothing of the request stays reachable from the heap
            clock = deadlines._clock(loop)
            assert len(clock._heap) <= 2 * 1 + 34, (i, len(clock._heap))

    _run(main())
