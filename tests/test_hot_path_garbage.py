"""A webhook leaves no reference cycles behind: everything it allocates is freed by reference
counting, so the garbage collector's passes (which scan every young object, and were ~10% of a
webhook's CPU when each JMESPath search left a cycle: docs/performance.md) stay rare and short.

The app runs in this test's event loop, over real HTTP on loopback to the sandbox simulator
(wire's connections, the thin dispatch, the log line and metrics all on)."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

from gateway.language import expressions

from .conftest import client_for, sandbox_provider, write_config
from .newstore_spec import EXAMPLES

SPEC_CARD = "5H78K5367H09Q34N22"


def _cycles_left_by(action: Any, times: int) -> int:
    """Objects the collector finds unreachable after ``action`` ran ``times`` times (with the
    collector off meanwhile, so nothing is collected early)."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(times):
            action()
        return gc.collect()
    finally:
        gc.enable()


def test_an_expression_search_leaves_no_cycle():
    expr = expressions.Compiled("card.balance.amount_minor")
    data = {"card": {"balance": {"amount_minor": 5000}}}
    assert expressions.search(expr, data) == 5000
    assert _cycles_left_by(lambda: expressions.search(expr, data), 200) == 0


async def _webhooks(app: Any, count: int) -> list[tuple[int, dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    body = json.dumps(EXAMPLES["balance"]).encode()

    async def one() -> tuple[int, dict[str, Any]]:
        answer: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            answer.update(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/sandbox/gift_card/balance", "raw_path": b"/sandbox/gift_card/balance",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
                 "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                 "state": {}}
        await app(scope, receive, send)
        return answer.get("status", 0), json.loads(answer.get("body", b"null"))

    try:
        for _ in range(5):  # the first ones open the provider's connection pool and fill caches
            await one()
        gc.collect()
        gc.disable()
        try:
            results = [await one() for _ in range(count)]
            left = gc.collect()
        finally:
            gc.enable()
        results.append((left, {}))
        return results
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan


def test_a_webhook_leaves_no_cycle_for_the_garbage_collector(sandbox, tmp_path):
    sandbox.add_card(SPEC_CARD, pin="4125", amount_minor=10000, currency="USD")
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    with client_for(config) as client:  # the plan as the tests load it; the app is run here
        app = client.app
    *answers, (left, _) = asyncio.run(_webhooks(app, 50))
    assert answers == [(200, {"value": 100.0, "currency": "USD"})] * 50
    # Each of the 50 webhooks used to leave ~13 objects in cycles (3 JMESPath interpreters).
    assert left < 10, f"{left} objects in reference cycles after 50 webhooks"


def test_gateway_serves_app_settles_the_heap_at_startup_and_other_apps_leave_the_collector_alone(sandbox, tmp_path):
    from litestar.testing import TestClient

    from gateway.compile.gateway_file import load
    from gateway.http.app import create_app

    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    plan, _ = load(config)
    saved = gc.get_threshold()
    gc.unfreeze()
    try:
        with TestClient(create_app(plan, settle_heap=True)) as client:  # as `gateway serve` builds it
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() > 0  # the started server's objects are out of the scans
        gc.unfreeze()
        gc.set_threshold(*saved)
        with TestClient(create_app(plan)) as client:  # the tests' apps (and any embedding application)
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() == 0 and gc.get_threshold() == saved
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


def test_a_replaced_runtime_calls_after_retire_once_it_is_closed(sandbox, tmp_path):
    from gateway.compile.gateway_file import load
    from gateway.runtime.live import Live

    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    plan, _ = load(config)
    calls: list[str] = []

    async def main() -> None:
        live = Live()
        await live.start(plan)
        live.after_retire = lambda: calls.append("settled")
        old = live.enter()  # a request still running on the old plan
        await live.replace(plan)
        await asyncio.sleep(0.05)
        assert calls == []  # not while the old plan still serves a request
        live.leave(old)
        for _ in range(50):
            await asyncio.sleep(0.01)
            if calls:
                break
        await live.stop()

    asyncio.run(main())
    assert calls == ["settled"]
