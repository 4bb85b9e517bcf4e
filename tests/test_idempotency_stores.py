"""One suite, three stores: what every idempotency store guarantees."""

from __future__ import annotations

import asyncio

import pytest

from gateway.runtime.idempotency import Record, open_store

from .stores import KINDS, store_url

RECORD = Record(200, "fp", "k1", b"sealed-bytes")


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    url = store_url(request.param, tmp_path)
    return open_store(url, tmp_path)


def run(coro):
    return asyncio.run(coro)


async def _opened(store):
    await store.open()
    return store


def test_claim_complete_replay(store):
    async def scenario():
        await store.open()
        try:
            assert await store.claim("k", "t1", 10) == ("acquired", None)
            assert await store.claim("k", "t2", 10) == ("busy", None)
            assert await store.complete("k", "t1", RECORD, 60) is True
            assert await store.claim("k", "t3", 10) == ("done", RECORD)
        finally:
            await store.close()

    run(scenario())


def test_only_the_holder_completes_or_releases(store):
    async def scenario():
        await store.open()
        try:
            assert (await store.claim("k", "t1", 10))[0] == "acquired"
            assert await store.complete("k", "intruder", RECORD, 60) is False
            await store.release("k", "intruder")
            assert (await store.claim("k", "t2", 10))[0] == "busy"
            await store.release("k", "t1")
            assert (await store.claim("k", "t2", 10))[0] == "acquired"
        finally:
            await store.close()

    run(scenario())


def test_a_lease_that_runs_out_frees_the_key(store):
    async def scenario():
        await store.open()
        try:
            assert (await store.claim("k", "crashed", 0.3))[0] == "acquired"
            await asyncio.sleep(0.6)
            assert (await store.claim("k", "retry", 10))[0] == "acquired"
            # The crashed holder, if it ever came back, can no longer overwrite the new claim.
            assert await store.complete("k", "crashed", RECORD, 60) is False
            assert await store.complete("k", "retry", RECORD, 60) is True
        finally:
            await store.close()

    run(scenario())


def test_records_expire_after_retention_and_are_purged(store):
    async def scenario():
        await store.open()
        try:
            await store.claim("old", "t1", 10)
            await store.complete("old", "t1", RECORD, 0.3)
            await store.claim("live", "t2", 10)
            await store.complete("live", "t2", RECORD, 60)
            await asyncio.sleep(0.6)
            purged = await store.purge()
            assert purged in (0, 1)  # Redis expires by itself and reports 0
            assert (await store.claim("old", "t3", 10))[0] == "acquired"
            assert (await store.claim("live", "t4", 10)) == ("done", RECORD)
        finally:
            await store.close()

    run(scenario())


def test_exactly_one_of_many_concurrent_claims_wins(store):
    async def scenario():
        await store.open()
        try:
            results = await asyncio.gather(*(store.claim("race", f"t{i}", 10) for i in range(50)))
        finally:
            await store.close()
        return [kind for kind, _ in results]

    kinds = run(scenario())
    assert kinds.count("acquired") == 1
    assert kinds.count("busy") == 49


def test_many_concurrent_completions_each_get_their_own_result(store):
    async def scenario():
        await store.open()
        try:
            for i in range(40):
                await store.claim(f"k{i}", f"t{i}", 10)
            # Every other completion comes from a token that does not hold its key.
            results = await asyncio.gather(*(
                store.complete(f"k{i}", f"t{i}" if i % 2 == 0 else "intruder", RECORD, 60) for i in range(40)))
            kinds = [(await store.claim(f"k{i}", "later", 10))[0] for i in range(40)]
        finally:
            await store.close()
        return results, kinds

    results, kinds = run(scenario())
    assert results == [i % 2 == 0 for i in range(40)]
    assert kinds == ["done" if i % 2 == 0 else "busy" for i in range(40)]
