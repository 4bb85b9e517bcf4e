"""The webhook routes without the framework around them: a thin ASGI dispatch in front of Litestar.

A webhook is ``POST`` to one of the contracts' routes (``/{provider}/gift_card/{operation}``,
``/{provider}/financial_instruments[/{id}/_capture|_refund|_revoke]``). Litestar's routing,
``Request`` and ``Response`` objects and exception middleware around
:func:`~gateway.runtime.webhook.handle` were 15-20% of the event loop's time per webhook
(docs/performance.md), for nothing the handler uses: it takes the headers, a body reader and the
path's parameters, and returns a status and bytes. So those requests are matched here and handed
to ``handle`` directly; everything else (other paths and methods, a trailing slash, an empty
segment, ``/health``, ``/schema`` ...) goes to Litestar unchanged, which still declares the
webhook routes (``/schema`` and the 405 for ``GET`` on a webhook path come from there).

What the Litestar route did, and so what this does the same way (tests pin each):

- the body: at most ``max_body`` bytes (announced ``Content-Length`` or bytes received: 413),
  within ``body_timeout`` (408, answered with ``Connection: close``); a client that disconnects
  mid-body is a 400, as Litestar's "client disconnected prematurely" was;
- the Runtime is taken for the request and given back (:class:`~gateway.runtime.live.Live`), so a
  reload meanwhile does not change this request's plan;
- a bug becomes NewStore's 500 Error body and one log line naming where it failed (``errors_to_body``);
- request ids, the server span and the log scope come from the wrapper outside both
  (:func:`gateway.observe.requestid.wrap`), metrics from ``handle``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Iterable, Mapping, MutableMapping

from ..errors import PayloadTooLarge, RequestRejected
from ..runtime import deadlines
from ..runtime.live import Live
from ..runtime.webhook import BodyReader, handle

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_KNOWN_PATHS = 4096
# A webhook route as segments: a literal, or None for a `{name:str}` parameter (the first is the provider).
Route = tuple[str, str | None, tuple[str | None, ...], tuple[str, ...]]  # contract, fixed operation, segments, params


class Headers(dict[str, str]):
    """The request's headers by lowercase name (the first of repeated ones, as Litestar's), looked
    up case-insensitively as ``handle`` and the inbound checks expect."""

    __slots__ = ()

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> Headers:
    headers = Headers()
    for name, value in raw:
        key = name.decode("latin-1").lower()
        if key not in headers:
            dict.__setitem__(headers, key, value.decode("latin-1"))
    return headers


def compile_routes(contracts: Mapping[str, Any]) -> dict[int, list[Route]]:
    """Every webhook route of the contracts, by its number of path segments."""
    table: dict[int, list[Route]] = {}
    for contract in contracts.values():
        for template, fixed in contract.routes:
            segments: list[str | None] = [None]  # /{provider}
            params: list[str] = ["provider"]
            for part in template.strip("/").split("/"):
                if part.startswith("{") and part.endswith("}"):
                    segments.append(None)
                    params.append(part[1:-1].split(":", 1)[0])
                else:
                    segments.append(part)
            table.setdefault(len(segments), []).append((contract.name, fixed, tuple(segments), tuple(params)))
    return table


def match(table: dict[int, list[Route]], path: str) -> tuple[str, str, str, dict[str, str]] | None:
    """(contract, provider, operation, other path parameters) of a webhook path, or None."""
    parts = path[1:].split("/")
    for contract, fixed, segments, params in table.get(len(parts), ()):
        values: list[str] = []
        for part, literal in zip(parts, segments):
            if not part or (literal is not None and part != literal):
                break
            if literal is None:
                values.append(part)
        else:
            found = dict(zip(params, values))
            provider = found.pop("provider")
            operation = fixed or found.pop("operation")
            return contract, provider, operation, found
    return None


def body_reader(receive: Receive, headers: Mapping[str, str], max_body: int, timeout: float,
                loop: asyncio.AbstractEventLoop | None = None) -> BodyReader:
    async def read() -> bytes:
        # A client that sends headers and then stalls (or dribbles) its body must not hold a
        # worker slot forever: the body has `timeout` seconds (`gateway serve --body-timeout`).
        try:
            running = loop or asyncio.get_running_loop()
            async with deadlines.at(running.time() + timeout, running):
                return await _read_all(receive, headers, max_body)
        except TimeoutError:
            error = RequestRejected(f"the request body did not arrive within {timeout:g}s", error_code="request_timeout")
            error.status = 408  # answered with `Connection: close`
            raise error from None

    return read


async def _read_all(receive: Receive, headers: Mapping[str, str], max_body: int) -> bytes:
    announced = headers.get("content-length")
    if announced is not None:
        try:
            too_large = int(announced) > max_body
        except ValueError:
            raise RequestRejected(f"the request body could not be read: Invalid content-length: {announced!r}") from None
        if too_large:  # said so before any byte arrived
            raise PayloadTooLarge("the request body is larger than this gateway accepts")
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > max_body:
                    raise PayloadTooLarge("the request body is larger than this gateway accepts")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise RequestRejected("the request body could not be read: client disconnected prematurely")


def webhooks(app: ASGIApp, live: Live, table: dict[int, list[Route]], *, max_body: int, body_timeout: float,
             reserved: frozenset[str], on_bug: Callable[[BaseException], tuple[int, bytes]]) -> ASGIApp:
    """``app`` (Litestar's handler) with the webhook routes answered here first.

    ``reserved``: first path segments of the app's other routes (``schema``, ``health``, ...),
    which Litestar prefers over a ``{provider}`` parameter: those paths stay Litestar's."""

    # Webhook paths already matched (providers x gift card operations: a few); a payment path,
    # which carries the instrument's id, is matched each time and never kept.
    known: dict[str, tuple[str, str, str, dict[str, str]]] = {}

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return await app(scope, receive, send)
        path: str = scope["path"]
        found = known.get(path)
        if found is None:
            found = match(table, path)
            if found is None or path[1:].split("/", 1)[0] in reserved:
                return await app(scope, receive, send)
            if not found[3] and len(known) < _KNOWN_PATHS:  # a path without an id in it: seen again
                known[path] = found
        contract, provider, operation, params = found
        headers = _headers(scope["headers"])
        rt = live.enter()  # kept to the end: a reload meanwhile does not change this request's plan
        try:
            status, content = await handle(rt, headers, body_reader(receive, headers, max_body, body_timeout, rt.loop),
                                           contract, provider, operation, params)
        except Exception as exc:  # a bug: NewStore still gets an Error body, and the log where it failed
            status, content = on_bug(exc)
        finally:
            live.leave(rt)
        response_headers = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode("ascii"))]
        if status == 408:  # the rest of the body may still be on its way; the connection cannot be reused
            response_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})

    return dispatch
