"""The swap a reload makes (gateway/runtime/live.py), without sockets: a request keeps the
Runtime it started with, the replaced one closes only after its last request, and the
idempotency store is kept across a reload unless its settings changed."""

from __future__ import annotations

import asyncio

import pytest

from gateway.compile.gateway_file import load
from gateway.runtime.live import Live

from .conftest import SANDBOX_KEY_FILE, SANDBOX_MAPPING, write_config

pytestmark = pytest.mark.unit


def _plan(tmp_path, providers=("a",), retention=3600):
    entry = {"mapping": str(SANDBOX_MAPPING), "vars": {"base_url": "http://127.0.0.1:9"},
             "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none"}
    config = write_config(tmp_path, {name: entry for name in providers},
                          idempotency={"store": "sqlite:///store.sqlite3", "key_file": "k.key", "retention": retention})
    plan, diagnostics = load(config)
    assert plan is not None, diagnostics
    return plan


def _client(rt, name):
    """A provider's upstream (behind its circuit breaker, if it has one)."""
    upstream = rt.upstreams[name]
    return getattr(upstream, "upstream", upstream)


def test_a_request_keeps_its_runtime_and_the_old_one_closes_after_it(tmp_path):
    async def scenario():
        live = Live()
        first = await live.start(_plan(tmp_path))
        in_flight = live.enter()  # a request that started before the reload
        second = await live.replace(_plan(tmp_path, providers=("a", "b")))
        assert live.current is second and in_flight is first
        assert sorted(live.enter().plan.providers) == ["a", "b"]  # a new request sees the new plan
        await asyncio.sleep(0)
        assert not _client(first, "a").closed  # still in use by the request in flight
        assert live.draining == 1
        live.leave(in_flight)
        for _ in range(20):
            await asyncio.sleep(0)
        assert first.upstreams == {} and live.draining == 0  # closed once its last request left
        assert not _client(second, "a").closed
        await live.stop()
        assert second.upstreams == {}

    asyncio.run(scenario())


def test_the_store_is_kept_when_its_settings_did_not_change_and_replaced_when_they_did(tmp_path):
    async def scenario():
        live = Live()
        first = await live.start(_plan(tmp_path))
        second = await live.replace(_plan(tmp_path, providers=("a", "b")))
        assert second.idempotency is first.idempotency and second.owns_store and not first.owns_store
        for _ in range(20):
            await asyncio.sleep(0)
        assert second.idempotency.store._conn is not None  # closing the first did not close the store
        third = await live.replace(_plan(tmp_path, retention=7200))
        assert third.idempotency is not second.idempotency
        await live.stop()

    asyncio.run(scenario())


def test_a_reload_keeps_a_providers_breaker_unless_its_host_or_settings_changed(tmp_path):
    """A provider found down stays known down across a reload that does not touch it (adding a
    tenant, say): otherwise every webhook to it waits for its timeout again, `failures` times. A
    provider now calling another base_url, or with other breaker settings, starts closed."""
    def plan(base_urls, failures=5):
        entries = {name: {"mapping": str(SANDBOX_MAPPING), "vars": {"base_url": url},
                          "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none",
                          "breaker": {"failures": failures, "cooldown": 30}} for name, url in base_urls.items()}
        config = write_config(tmp_path, entries, idempotency={"store": "sqlite:///store.sqlite3", "key_file": "k.key"})
        loaded, diagnostics = load(config)
        assert loaded is not None, diagnostics
        return loaded

    def trip(rt, name):
        breaker = rt.breakers()[name]
        for _ in range(breaker.plan.failures):
            ticket = breaker.admit()
            breaker.failure(ticket)
        assert breaker.state == "open"

    async def scenario():
        live = Live()
        first = await live.start(plan({"a": "http://127.0.0.1:9", "b": "http://127.0.0.1:9"}))
        trip(first, "a")
        trip(first, "b")
        second = await live.replace(plan({"a": "http://127.0.0.1:9", "b": "http://127.0.0.1:10", "c": "http://127.0.0.1:9"}))
        assert second.breakers()["a"] is first.breakers()["a"] and second.breakers()["a"].state == "open"
        assert second.breakers()["b"].state == "closed"  # another host: its count was the old one's
        assert second.breakers()["c"].state == "closed"
        third = await live.replace(plan({"a": "http://127.0.0.1:9"}, failures=3))
        assert third.breakers()["a"].state == "closed"  # other settings: starts afresh
        assert len(second.breakers()["a"]._listeners) == 1  # kept, not subscribed to the gauge twice
        await live.stop()

    asyncio.run(scenario())
