"""The outer ASGI layer every provider API request passes: call log, injected faults, auth check.

It sits in front of Litestar's router (not in Litestar middleware) because Litestar only runs
middleware for matched routes, while unknown paths and wrong methods must be recorded, faulted
and authenticated like any other call.

Order for each API request: read the body (over the limit: recorded without body, answered by
the dialect's ``too_large``), record it in the call log, apply the oldest queued fault, run the
dialect's ``check`` (authentication, required headers), refuse ``OPTIONS``, then route.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from .core import Fault, SimCore

if TYPE_CHECKING:
    from .dialect import Dialect

GARBAGE_BODY = b"<html>upstream exploded</html>"
MASK = "***"


@dataclass(frozen=True)
class Reply:
    """A complete JSON response decided outside Litestar's handlers (gate, dialect, stored replays)."""

    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, msgspec.json.encode(payload), dict(headers or {}))


@dataclass(frozen=True)
class ApiRequest:
    """What a dialect's ``check`` sees of a request, before routing."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()  # as received (ASGI: lower-case names)

    def header(self, name: str) -> str | None:
        """The value, repeated headers joined with ", "."""
        return self.headers.get(name.lower())

    def first(self, name: str) -> bytes | None:
        """The raw value of the first header with that name."""
        wanted = name.lower().encode("latin-1")
        return next((value for key, value in self.raw_headers if key == wanted), None)


def joined_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def loggable_body(body: bytes | None) -> Any:
    """The parsed JSON, the raw text if it is not JSON, or None if empty."""
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", errors="replace")


class _Disconnected(Exception):
    pass


class _TooLarge(Exception):
    pass


class Gate:
    def __init__(
        self,
        core: SimCore,
        dialect: Dialect,
        *,
        is_api_path: Callable[[str], bool],
        masked_headers: Iterable[str],
        max_body_bytes: int,
        reject_options: bool = True,
    ) -> None:
        self._core = core
        self._dialect = dialect
        self.is_api_path = is_api_path
        self._masked = frozenset(name.lower() for name in masked_headers)
        self._max_body = max_body_bytes
        self._reject_options = reject_options

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        try:
            body = await _read_body(receive, self._max_body)
        except _Disconnected:
            return
        except _TooLarge:
            self._record(scope, None)
            await send_reply(send, self._dialect.too_large(self._max_body))
            return

        self._record(scope, body)
        fault = self._core.take_fault()
        if fault is not None and await self._apply_fault(fault, send):
            return

        request = ApiRequest(
            scope["method"],
            scope["path"],
            scope["query_string"].decode("latin-1"),
            joined_headers(scope),
            tuple(scope["headers"]),
        )
        rejection = self._dialect.check(request)
        if rejection is not None:
            await send_reply(send, rejection)
            return
        # Litestar answers OPTIONS on every route by itself; these APIs offer no OPTIONS anywhere.
        if self._reject_options and scope["method"] == "OPTIONS":
            await send_reply(send, self._dialect.http_error(405, "method not allowed for this endpoint"))
            return

        await app(scope, _replaying(body, receive), send)

    def _record(self, scope: Scope, body: bytes | None) -> None:
        headers = joined_headers(scope)
        for name in self._masked & headers.keys():
            headers[name] = MASK
        self._core.calls.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode("latin-1"),
                "headers": headers,
                "body": loggable_body(body),
            }
        )

    async def _apply_fault(self, fault: Fault, send: Send) -> bool:
        """Returns True when the fault already answered the request."""
        if fault.mode == "delay":
            # Sleeping here, before any handler takes the state lock, keeps other requests flowing.
            await asyncio.sleep(fault.seconds)
            return False
        if fault.mode == "status":
            await send_reply(send, self._dialect.fault(fault.status))
            return True
        # Always application/json, even for the garbage fault: that is the point of that fault.
        await send_reply(send, Reply(200, GARBAGE_BODY))
        return True


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    # The body was consumed above; hand it to Litestar once, then fall through to the real
    # receive so Litestar still sees a client disconnect.
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay  # type: ignore[return-value]


async def send_reply(send: Send, reply: Reply) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(reply.content)).encode())]
    headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.content, "more_body": False})
