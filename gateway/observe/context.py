"""The request a log line, a template or a span belongs to.

One :class:`RequestScope` per HTTP request, held in a context variable by the ASGI wrapper
(:mod:`gateway.observe.requestid`): every log line written while the request runs (the webhook
line, idempotency warnings, an unhandled error) carries its ``request_id``, ``provider`` and
``operation`` without each call site passing them, and the server span reads the outcome the
webhook line recorded. Outside a request (startup, a tool) there is no scope.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class RequestScope:
    request_id: str
    provider: str | None = None
    operation: str | None = None
    # What the webhook's log line said (outcome, status, error_code): read by the server span.
    result: dict[str, Any] | None = None


SCOPE: ContextVar[RequestScope | None] = ContextVar("gateway_request_scope", default=None)


_BATCH = 64  # ids per read of the system's random source
_random = b""
_taken = 0


def _forget_random() -> None:
    """In a forked worker: ids from its own reads only, never the parent's leftover bytes."""
    global _random, _taken
    _random, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    """A random uuid4 as 32 hex characters: ``uuid.uuid4().hex`` without building a ``UUID``
    (which was ~2% of a webhook's time: one per request id, one per ``webhook_id``), from
    ``os.urandom`` read 64 ids at a time (a system call per id was another ~1.5%)."""
    global _random, _taken
    if _taken >= len(_random):
        _random, _taken = os.urandom(16 * _BATCH), 0
    raw = bytearray(_random[_taken:_taken + 16])
    _taken += 16
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def current() -> RequestScope | None:
    return SCOPE.get()


def request_id() -> str:
    """The current request's id; outside a request (``gateway render``), a fresh one."""
    scope = SCOPE.get()
    return scope.request_id if scope is not None else new_id()


def bind(provider: str, operation: str) -> RequestScope:
    """Name the webhook the current request is; starts a scope if the caller made none (a
    webhook handled without the HTTP layer, as in tests)."""
    scope = SCOPE.get()
    if scope is None:
        scope = RequestScope(new_id())
        SCOPE.set(scope)
    scope.provider, scope.operation = provider, operation
    return scope
