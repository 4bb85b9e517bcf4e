"""The ASGI entry point uvicorn imports in each worker process, and the HTTP front it runs behind.

The HTTP/1.1 parser is httptools (llhttp), chosen by ``tests/test_http_front.py``: a request with
both ``Content-Length`` and ``Transfer-Encoding`` is refused with 400 and the connection closed,
so a request smuggled in its body never runs (h11 reads such a request as chunked, answers it,
and then runs the smuggled one from the same connection). :class:`HttpFront` is uvicorn's
httptools protocol with what uvicorn leaves out:

- a connection that sends nothing is closed after ``header_timeout``, and a request line and
  headers must arrive within ``header_timeout`` of their first byte (uvicorn waits forever);
- headers larger than :data:`MAX_HEADER_BYTES` are refused with 431 (llhttp has no limit);
- a body not complete ``body_timeout`` (+ a second, so the app's own 408 goes first) after its
  headers closes the connection, also when the app answered without reading the body;
- what the front itself answers (400 for unparseable HTTP, 408, 431) is NewStore's Error body,
  followed by closing the connection.

``gateway serve`` passes the timeouts in the environment (:data:`FRONT_ENVIRONMENT`), as it does
the config path, so every worker process reads the same.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
import os
from typing import Any

import msgspec
from litestar import Litestar
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .. import logs
from ..compile.gateway_file import load
from ..errors import ConfigError
from ..observe import logformat, metrics, tracing
from ..observe.context import new_id
from ..plan import GatewayPlan
from .app import DEFAULT_BODY_TIMEOUT, create_app
from .reload import defer_sighup
from .startup import one_line_startup_failures

FRONT_ENVIRONMENT = {"body_timeout": "GATEWAY_BODY_TIMEOUT", "header_timeout": "GATEWAY_HEADER_TIMEOUT"}
# `gateway serve --drain-delay` and `--no-metrics`, passed to every worker the same way.
APP_ENVIRONMENT = {"drain_delay": "GATEWAY_DRAIN_DELAY", "metrics": "GATEWAY_METRICS"}
DEFAULT_HEADER_TIMEOUT = 10.0
MAX_HEADER_BYTES = 65536  # request line and headers of one request
_BODY_GRACE = 1.0  # the app answers a slow body with 408 first; the front closes a second later


_loaded: GatewayPlan | None = None  # the plan `gateway serve` loaded, for a worker in its process


def use_loaded(plan: GatewayPlan) -> None:
    """``gateway serve --workers 1`` runs its one worker in its own process: the plan it has
    just loaded and checked is used as is, rather than loaded a second time (startup)."""
    global _loaded
    _loaded = plan


def app_from_environment() -> Litestar:
    global _loaded
    defer_sighup()  # a SIGHUP while this worker loads is kept for later, not fatal
    logformat.configure(os.environ.get("GATEWAY_LOG_LEVEL", "INFO"), os.environ.get("GATEWAY_LOG_FORMAT", "json"))
    tracing.configure_from_environment()  # off unless OTEL_* ask for it (`gateway serve` checked them)
    plan, _loaded = _loaded, None
    if plan is None:
        plan, diagnostics = load(os.environ.get("GATEWAY_CONFIG", "gateway.yaml"), keep=True)
        if plan is None:
            raise ConfigError([d for d in diagnostics if d.severity == "error"])
    metrics.configure(os.environ.get(APP_ENVIRONMENT["metrics"], "on") != "off")
    app = create_app(plan, body_timeout=_front_setting("body_timeout", DEFAULT_BODY_TIMEOUT),
                     drain_delay=float(os.environ.get(APP_ENVIRONMENT["drain_delay"]) or 0),
                     reload_from=os.environ.get("GATEWAY_CONFIG", "gateway.yaml"), settle_heap=True)
    return one_line_startup_failures(app, plan)


@functools.cache
def _front_setting(name: str, default: float) -> float:
    value = os.environ.get(FRONT_ENVIRONMENT[name])
    return float(value) if value else default


def _error_response(status: int, error_code: str, message: str, default_headers: list[tuple[bytes, bytes]],
                    request_id: str) -> bytes:
    body = msgspec.json.encode({"error_code": error_code, "message": message, "request_accepted": False})
    head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode("ascii")]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers]  # date, server
    head.append(b"x-request-id: " + request_id.encode("ascii") + b"\r\n")
    head.append(f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
                .encode("ascii"))
    return b"".join(head) + body


class HttpFront(HttpToolsProtocol):
    """uvicorn's httptools protocol with header/body deadlines, a header size limit and JSON errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = _front_setting("header_timeout", DEFAULT_HEADER_TIMEOUT)
        self.body_timeout = _front_setting("body_timeout", DEFAULT_BODY_TIMEOUT) + _BODY_GRACE
        # "idle": connected, no request byte yet; "headers": a request began, headers incomplete;
        # "body": headers complete, body incomplete; None: between requests (keep-alive's job)
        self.phase: str | None = "idle"
        self.header_bytes = 0
        self.deadline: asyncio.TimerHandle | None = None
        self.armed: str | None = None  # the phase `deadline` was set for

    # --- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, "idle")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        phase = self.phase
        if phase is None or self.transport.is_closing():
            return
        if phase == "headers":
            self.header_bytes += len(data)
            if self.header_bytes > MAX_HEADER_BYTES:
                self._answer_and_close(431, "request_headers_too_large",
                                       f"the request line and headers exceed {MAX_HEADER_BYTES} bytes")
                return
        if phase != self.armed:
            # A request still incomplete after what arrived: its phase's deadline starts now. A
            # request that arrives whole in one read (the common case) never sets a timer: two
            # loop timers set and cancelled per request were ~2% of a webhook (docs/performance.md).
            self._arm(self.header_timeout if phase == "headers" else self.body_timeout, phase)

    def send_400_response(self, msg: str) -> None:
        """Unparseable HTTP (uvicorn's plain-text 400): the Error body instead, then close."""
        self._answer_and_close(400, "invalid_request",
                               "the request is not valid HTTP/1.1 (a malformed request line or header, "
                               "or both Content-Length and Transfer-Encoding)")

    # --- parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.phase = "headers"  # its deadline is set at the end of data_received if still incomplete
        self.header_bytes = 0

    def on_headers_complete(self) -> None:
        self.phase = "body"
        self.header_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.phase = None
        self._disarm()
        super().on_message_complete()

    # --- deadlines ---------------------------------------------------------------------------

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self.armed = phase
        self.deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        self.armed = None
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expired(self) -> None:
        self.deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        cycle = self.cycle
        if self.phase == "idle":
            self.transport.close()  # nothing was asked: nothing to answer
        elif self.phase == "headers" and cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False  # pipelined behind a request still running: close after it
        elif self.phase == "headers":
            self._answer_and_close(408, "request_timeout",
                                   f"the request headers did not arrive within {self.header_timeout:g}s")
        elif self.phase == "body" and cycle is not None and cycle.response_started:
            if cycle.response_complete:
                self.transport.close()  # answered without reading the body, which still dribbles
            else:
                cycle.keep_alive = False
        elif self.phase == "body":
            self._answer_and_close(408, "request_timeout",
                                   f"the request body did not arrive within {self.body_timeout - _BODY_GRACE:g}s")

    def _answer_and_close(self, status: int, error_code: str, message: str) -> None:
        self._disarm()
        # No request was read, so none of its headers is trusted: a fresh id, in the answer and the line.
        request_id = new_id()
        logs.event(self.logger, logging.WARNING, "connection_closed", msg=f"closed a connection: {status} {error_code}",
                   status=status, error_code=error_code, request_id=request_id)
        self.transport.write(_error_response(status, error_code, message, self.server_state.default_headers, request_id))
        self.transport.close()
