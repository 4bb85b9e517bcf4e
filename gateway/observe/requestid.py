"""Request ids, and the ASGI wrapper that gives every request its scope and (if tracing is on)
its server span.

An incoming ``X-Request-ID`` is kept if it is sane: 1 to :data:`MAX_LENGTH` characters, each
printable ASCII other than space (``!`` to ``~``), so it can go into a log line, a header to a
provider or a template without escaping surprises. Anything else is replaced by a fresh id (32
hex characters, a uuid4) and the replacement is logged (with why, never the value received). A
request without one gets a fresh id. Every answer that passes through the app carries the id
back in ``X-Request-ID``: webhooks, errors, 404s and bugs alike.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, MutableMapping

from .. import logs
from . import tracing
from .context import SCOPE, RequestScope, new_id

HEADER = b"x-request-id"
MAX_LENGTH = 128

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("gateway.observe.requestid")


def accept(received: str | None) -> tuple[str, str | None]:
    """The request's id, and why the one received was replaced (None: kept, or none was sent)."""
    if received is None:
        return new_id(), None
    if not received:
        return new_id(), "empty"
    if len(received) > MAX_LENGTH:
        return new_id(), f"longer than {MAX_LENGTH} characters ({len(received)})"
    if not all("!" <= c <= "~" for c in received):
        return new_id(), "not printable ASCII without spaces"
    return received, None


def wrap(app: ASGIApp) -> ASGIApp:
    """``app`` with a request id, a log scope and a server span around every HTTP request."""

    async def with_request_id(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        received = None
        for name, value in scope["headers"]:
            if name == HEADER:
                received = value.decode("latin-1")
                break
        request_id, why = accept(received)
        request = RequestScope(request_id)
        token = SCOPE.set(request)
        echo = (HEADER, request_id.encode("ascii"))
        answered: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), echo]}
                answered.append(message["status"])
            await send(message)

        try:
            if why is not None:
                logs.event(logger, logging.WARNING, "request_id_replaced", reason=why)
            tracer = tracing.TRACER
            if tracer is None:
                await app(scope, receive, send_with_id)
            else:
                await _traced(tracer, app, scope, receive, send_with_id, request, answered)
        finally:
            SCOPE.reset(token)

    return with_request_id


async def _traced(tracer: Any, app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                  request: RequestScope, answered: list[int]) -> None:
    from ..contracts import OPERATIONS

    method = scope.get("method", "")
    with tracing.server_span(tracer, method, scope["headers"]) as span:
        failed: str | None = None
        try:
            await app(scope, receive, send)
        except BaseException as exc:
            failed = type(exc).__name__
            raise
        finally:
            result = request.result or {}
            status = answered[0] if answered else None
            if request.operation in OPERATIONS:  # a bounded set: span names stay few
                span.update_name(f"{method} {request.operation}")
            if failed is None and status is not None and status >= 500:
                failed = str(status)
            tracing.finish(span, {
                "http.request.method": method,
                "http.response.status_code": status,
                "gateway.request_id": request.request_id,
                "gateway.provider": request.provider,
                "gateway.operation": request.operation,
                "gateway.outcome": result.get("outcome"),
                "gateway.error_code": result.get("error_code"),
                "gateway.calls": result.get("calls"),
            }, error=failed)
