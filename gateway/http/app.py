"""The Litestar app: ``POST /{provider}/gift_card/{operation}`` for every configured provider.

The app wires things together: upstream clients and the idempotency store are created at
startup from the plan and closed at shutdown; each webhook is handled by :mod:`gateway.runtime.webhook`;
Litestar's own errors (unknown route, wrong method, oversize body) and bugs become the spec's
Error body. Nothing leaves as a bare 500.
"""

from __future__ import annotations

import functools
import traceback
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.events import BaseEventEmitterBackend
from litestar.exceptions import HTTPException

from .. import contracts, logs
from ..errors import (
    InternalError,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestRejected,
    RouteNotFound,
    WebhookError,
)
from ..observe import metrics, requestid
from ..plan import GatewayPlan
from ..runtime import heap
from ..runtime.live import Live
from ..runtime.upstream.client import TransportFactory
from ..runtime.webhook import handle
from . import dispatch, health, openapi

_JSON = "application/json"
DEFAULT_BODY_TIMEOUT = 10.0  # seconds for a request body to arrive (`gateway serve --body-timeout`)


def create_app(plan: GatewayPlan, *, transport_factory: TransportFactory | None = None,
               body_timeout: float = DEFAULT_BODY_TIMEOUT, drain_delay: float = 0.0,
               reload_from: str | None = None, settle_heap: bool = False) -> Litestar:
    """Build the app from a compiled plan; ``transport_factory`` is the network seam for tests.

    ``body_timeout`` bounds reading a webhook's body (``dispatch.body_reader``): a body that has not arrived by then is answered 408 and the connection closed.
    ``drain_delay``: seconds a worker keeps serving after SIGTERM, with ``/readyz`` at 503 (``health``).
    ``reload_from``: the gateway.yaml that SIGHUP reloads in place (``gateway serve``; see reload.py).
    ``settle_heap``: freeze the started server's objects out of the garbage collector's scans, and
    again after a reload (``gateway serve``; see runtime/heap.py).
    """
    live = Live()  # the Runtime requests use; a reload replaces it (runtime/live.py)
    readiness = health.Readiness()

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await live.start(plan, transport_factory)
        if settle_heap:
            heap.settle()
            live.after_retire = functools.partial(heap.settle, collect=True)
        readiness.started = True
        unwatch = health.watch_sigterm(readiness, drain_delay)
        try:
            if reload_from is None:
                yield
            else:
                from .reload import reloads_on_sighup

                async with reloads_on_sighup(live, reload_from, transport_factory):
                    yield
        finally:
            readiness.draining = True
            unwatch()
            await live.stop()
            metrics.worker_stopped()

    def route(contract_name: str, template: str, fixed: str | None) -> Any:
        @post("/{provider:str}" + template, status_code=200, name=f"{contract_name}:{fixed or 'operation'}")
        async def webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
            params = dict(request.path_params)
            provider = params.pop("provider")
            operation = fixed or params.pop("operation")
            rt = live.enter()  # kept to the end: a reload meanwhile does not change this request's plan
            try:
                # Reached only when the dispatch steps aside (an app mounted under a root path):
                # the same body reader, so the same 408 and 413.
                read = dispatch.body_reader(request.receive, request.headers, plan.max_body_bytes, body_timeout, rt.loop)
                status, content = await handle(rt, request.headers, read, contract_name, provider, operation, params)
            finally:
                live.leave(rt)
            # 408: the rest of the body may still be on its way; the connection cannot be reused.
            headers = {"connection": "close"} if status == 408 else None
            return Response(content, status_code=status, media_type=_JSON, headers=headers)

        return webhook

    def serving() -> GatewayPlan:
        """The plan serving now: the loaded one until startup, then the live one (a reload's)."""
        return live.current.plan if live.current else plan

    webhooks = [route(c.name, template, fixed) for c in contracts.CONTRACTS.values() for template, fixed in c.routes]

    @get("/health")
    async def health_() -> Response[bytes]:
        body = {"status": "ok", "providers": sorted(serving().providers)}
        return Response(msgspec.json.encode(body), media_type=_JSON)

    app = Litestar(
        route_handlers=[*webhooks, health_, *health.routes(live, readiness), *openapi.routes(serving)],
        lifespan=[lifespan],
        exception_handlers={Exception: _unhandled},
        request_max_body_size=plan.max_body_bytes,
        openapi_config=None,
        logging_config=None,
        event_emitter_backend=_NoEvents,
    )
    # Inside Litestar's own entry, around its router: unlike a Litestar middleware, this also
    # sees what never reaches a route (404, 405), so every answer carries X-Request-ID and every
    # log line of the request its id (tests/test_logs.py: a 404 carries X-Request-ID).
    # The webhook routes themselves are answered by a thin dispatch in front of Litestar's
    # router (dispatch.py: Litestar's request/response machinery was 15-20% of a webhook's time);
    # Litestar keeps every other route, and still declares the webhooks for /schema and 405s.
    reserved = frozenset(r.path.strip("/").split("/", 1)[0] for r in app.routes if not r.path.startswith("/{"))
    fast = dispatch.webhooks(app.asgi_handler, live, dispatch.compile_routes(contracts.CONTRACTS),
                             max_body=plan.max_body_bytes, body_timeout=body_timeout, reserved=reserved,
                             on_bug=bug_answer)
    app.asgi_handler = requestid.wrap(fast)
    return app


class _NoEvents(BaseEventEmitterBackend):
    """The gateway has no event listeners. Litestar's default emitter starts a task group at
    startup through anyio, whose asyncio backend it imports then: ~9% of `gateway serve`'s
    startup with 500 mappings (docs/performance.md, round 5), for events nobody emits."""

    async def __aenter__(self) -> _NoEvents:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def emit(self, event_id: str, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"the gateway emits no events (asked to emit {event_id!r})")


def _unhandled(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar's own errors (unknown route, wrong method, oversize body) and bugs, as Error bodies."""
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            error: WebhookError = RouteNotFound(
                "no such route; NewStore calls POST /{provider}/gift_card/{balance|issue|activate|deactivate}")
        elif exc.status_code == 405:
            error = MethodNotAllowed("only POST is allowed on gift card webhooks")
        elif exc.status_code == 413:
            error = PayloadTooLarge("the request body is larger than this gateway accepts")
        else:
            error = RequestRejected(str(exc.detail), error_code="invalid_request")
            error.status = exc.status_code if 400 <= exc.status_code < 500 else 400
    else:
        status, body = bug_answer(exc)
        return Response(body, status_code=status, media_type=_JSON)
    return Response(contracts.encode(error.body()), status_code=error.status, media_type=_JSON)


def bug_answer(exc: BaseException) -> tuple[int, bytes]:
    """A bug's answer (500, the outcome unknown), logged with where it failed."""
    # Where it failed, not what it said: an exception's message may quote request data.
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))
    logs.logger.error("unhandled %s at %s", type(exc).__name__, where)
    error = InternalError("the gateway failed unexpectedly; the outcome is unknown", request_accepted=True)
    return error.status, contracts.encode(error.body())
