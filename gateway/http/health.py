"""The gateway's own endpoints for its operators: ``/livez``, ``/readyz`` and ``/metrics``.

- ``/livez``: 200 whenever the process serves at all (a restart will not fix anything else).
- ``/readyz``: 200 only when the plan is loaded and the app started, the idempotency store
  answers a ping, and this instance is not draining; else 503. Each check is in the body; the
  store appears by its kind, never by its URL (which may hold a password).
- ``/metrics``: Prometheus text, every worker's values summed (:mod:`gateway.observe.metrics`).

Draining: on SIGTERM, ``/readyz`` turns 503 at once, and the worker keeps serving for
``drain_delay`` seconds (``gateway serve --drain-delay``) before uvicorn's graceful shutdown
closes the listening socket, so a load balancer polling ``/readyz`` stops sending new webhooks
before they would be refused. uvicorn itself closes the socket first and tells the app only
afterwards (the lifespan shutdown), which is why the signal is watched here.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable

import msgspec
from litestar import Response, get

from ..observe import metrics
from ..runtime.idempotency import StoreError
from ..runtime.lifecycle import Runtime
from ..runtime.live import Live

_JSON = "application/json"
PING_TIMEOUT = 2.0  # seconds a store ping may take before the store counts as unreachable


@dataclass
class Readiness:
    started: bool = False  # the lifespan opened the clients and the store
    draining: bool = False  # SIGTERM (or shutdown) seen: finish what runs, take nothing new


def routes(live: Live, readiness: Readiness) -> list[Any]:
    version = metrics.version()

    @get("/livez", include_in_schema=False)
    async def livez() -> Response[bytes]:
        return _json(200, {"status": "ok", "version": version})

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response[bytes]:
        checks: dict[str, Any] = {"plan": "ok" if readiness.started else "not_started",
                                  "store": await _store_check(live.current), "draining": readiness.draining}
        # Reported, not judged: a provider being down is the same on every instance, so it must
        # not take this one out of the load balancer.
        breakers = {name: b.state for name, b in live.current.breakers().items()} if live.current else {}
        if breakers:
            checks["breakers"] = breakers
        ready = readiness.started and not readiness.draining and checks["store"]["status"] in ("ok", "none")
        return _json(200 if ready else 503, {"status": "ready" if ready else "not_ready", "version": version,
                                             "checks": checks})

    @get("/metrics", include_in_schema=False)
    async def prometheus() -> Response[bytes]:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    # Metrics off (`gateway serve --no-metrics`): no /metrics at all, so a scrape gets 404.
    return [livez, readyz, prometheus] if metrics.enabled() else [livez, readyz]


async def _store_check(rt: Runtime | None) -> dict[str, str]:
    guard = rt.idempotency if rt is not None else None
    if guard is None:
        return {"status": "none"} if rt.plan.idempotency is None else {"status": "not_open"}
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            await guard.store.ping()
    except (StoreError, TimeoutError):
        return {"status": "unreachable", "kind": guard.kind}
    return {"status": "ok", "kind": guard.kind}


def _json(status: int, body: dict[str, Any]) -> Response[bytes]:
    # Never cached: a proxy must not answer a probe from an earlier state.
    return Response(msgspec.json.encode(body), status_code=status, media_type=_JSON,
                    headers={"cache-control": "no-store"})


def watch_sigterm(readiness: Readiness, drain_delay: float) -> Callable[[], None]:
    """Mark the instance draining on SIGTERM, then let the server's own handler run after
    ``drain_delay`` seconds (at once on a second signal). Returns a function that undoes it.

    Only in the main thread, and only over a Python handler (uvicorn's): an app run by a test
    client in another thread, or with no handler to pass the signal on to, is left alone."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return lambda: None
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: Any) -> None:
        first = not readiness.draining
        readiness.draining = True
        if first and drain_delay > 0:
            # From a signal handler: only call_soon_threadsafe is safe (it wakes the loop).
            loop.call_soon_threadsafe(loop.call_later, drain_delay, previous, signum, None)
        else:
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return restore
