"""The outer layer every ``/v1`` request passes: call log, injected faults, API key check.

It sits in front of Litestar's router (not in Litestar middleware) because Litestar only runs
middleware for matched routes, while unknown paths and wrong methods must be recorded, faulted
and authenticated like any other call.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from .state import Fault, Simulator

API_PREFIX = "/v1"
MAX_BODY_BYTES = 1024 * 1024
GARBAGE_BODY = b"<html>upstream exploded</html>"


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def error_body(code: str, message: str) -> bytes:
    return msgspec.json.encode({"error": {"code": code, "message": message}})


class _Disconnected(Exception):
    pass


class _TooLarge(Exception):
    pass


class ApiGate:
    def __init__(self, simulator: Simulator, api_key: str) -> None:
        self._sim = simulator
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        try:
            body = await _read_body(receive)
        except _Disconnected:
            return
        except _TooLarge:
            self._record(scope, None)
            await _send(send, 413, error_body("payload_too_large", f"body exceeds {MAX_BODY_BYTES} bytes"))
            return

        self._record(scope, body)
        fault = self._sim.take_fault()
        if fault is not None and await _apply_fault(fault, send):
            return

        if not self._authorised(scope):
            await _send(send, 401, error_body("unauthorized", "missing or invalid X-Api-Key"))
            return
        # Litestar answers OPTIONS on every route by itself; this API offers no OPTIONS anywhere.
        if scope["method"] == "OPTIONS":
            await _send(send, 405, error_body("method_not_allowed", "method not allowed for this endpoint"))
            return

        await app(scope, _replaying(body, receive), send)

    def _authorised(self, scope: Scope) -> bool:
        given = next((value for name, value in scope["headers"] if name == b"x-api-key"), b"")
        return hmac.compare_digest(given, self._key)

    def _record(self, scope: Scope, body: bytes | None) -> None:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = "***" if name == "x-api-key" else raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self._sim.calls.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode("latin-1"),
                "headers": headers,
                "body": _loggable_body(body),
            }
        )


async def _apply_fault(fault: Fault, send: Send) -> bool:
    """Returns True when the fault already answered the request."""
    if fault.mode == "delay":
        # Sleeping here, before any handler takes the state lock, keeps other requests flowing.
        await asyncio.sleep(fault.seconds)
        return False
    if fault.mode == "status":
        code = "rate_limited" if fault.status == 429 else "simulated_fault"
        await _send(send, fault.status, error_body(code, f"simulated fault (HTTP {fault.status})"))
        return True
    await _send(send, 200, GARBAGE_BODY)
    return True


def _loggable_body(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", errors="replace")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
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


async def _send(send: Send, status: int, content: bytes) -> None:
    # Always application/json, even for the garbage fault: that is the point of that fault.
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content, "more_body": False})
