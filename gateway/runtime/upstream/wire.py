"""HTTP/1.1 to one provider origin, on asyncio and httptools' parser: what carries every provider request.

A request ``Upstream`` can send without httpx (``client._Direct``: the gateway's own transport,
fixed or no credentials, a URL on the provider's origin sent as it is) is written here as bytes
on a kept-alive connection and its answer parsed by httptools (llhttp, the parser uvicorn and
aiohttp use), its body decoded as it arrives with the bound of :class:`~.codecs.BoundedBody`.
Every other request is built by httpx and handed to :class:`~.transport.WireTransport`, which
sends it on the same pools.

Chosen by measurement (docs/performance.md, round 4; ``benchmarks/hotpath/clients.py``): per
provider call, aiohttp's client cost about 310 µs of CPU on the benchmark's machine, pyreqwest
170 µs, aiosonic 510 µs, and this 80-100 µs; the gateway's whole webhook costs about 0.6 ms.
aiohttp's cost is its generality (cookies, proxies, redirects, tracing hooks, multidicts, a timer
per read), none of which the gateway uses.

What it guarantees (tests/test_wire.py; the fault tests run through it):

- failures as httpx's classes, split by whether the request may have left: ``ConnectError`` /
  ``ConnectTimeout`` when no connection could be made (nothing sent), ``ReadTimeout`` when the
  provider went quiet for ``timeout`` seconds (between two reads, as httpx's read timeout),
  ``ReadError`` when the connection closed or reset before an answer, ``RemoteProtocolError``
  for an answer that is malformed or cut short;
- the answer's body bounded as it arrives (raw, each decoding layer and decoded:
  ``BodyTooLarge`` / ``Undecodable``), never buffered past the limit; its head (status line and
  headers) bounded to :data:`MAX_HEAD_BYTES`;
- no redirect followed, no cookie kept, no proxy, one request at a time per connection;
- a connection goes back to the pool only after an answer read to its end that allows it (not
  ``Connection: close``, not HTTP/1.0 without keep-alive, not framed by the end of the stream);
  anything else, a cancelled request included, closes it. Idle connections are closed after
  :data:`KEEPALIVE_SECONDS`, below the 5 s after which common servers drop them.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Callable

import httptools
import httpx

from .codecs import BodyTooLarge, BoundedBody, Undecodable

# Kept idle this long at most. Below the 5 s of common servers (uvicorn's default keep-alive),
# so a connection is dropped here before the provider closes it under a request being sent.
KEEPALIVE_SECONDS = 4.0
# The most an answer's status line and headers may take (aiohttp's limits allow about as much): a
# provider sending headers without end is refused as it goes, not buffered.
MAX_HEAD_BYTES = 64 * 1024
# Methods sent with no `Content-Length: 0` when they have no body (as aiohttp, which carried
# these requests before, sent them: providers see the same bytes).
_NO_LENGTH_WHEN_EMPTY = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"})

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class _Exchange:
    """One request's answer as it is parsed: its head, its body's decoder, and who waits for it."""

    __slots__ = ("body", "decode", "framed_by_eof", "head_bytes", "headers", "limit", "started", "status", "waiter")

    def __init__(self, waiter: asyncio.Future[Answer], limit: int, decode: bool) -> None:
        self.waiter = waiter
        self.limit = limit
        self.decode = decode
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: BoundedBody | None = None
        self.framed_by_eof = False
        self.started = False  # any byte of the answer received
        self.head_bytes = 0  # received before the head was complete


class Connection(asyncio.Protocol):
    """One kept-alive connection: idle in its pool, or carrying one exchange."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.idle_since = 0.0
        self.last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timeout = 0.0

    # -- the exchange ------------------------------------------------------------------------

    def send(self, request: bytes, waiter: asyncio.Future[Answer], limit: int, timeout: float | None,
             decode: bool = True) -> None:
        assert self.transport is not None and self.exchange is None
        self.exchange = _Exchange(waiter, limit, decode)
        loop = self.pool.loop
        self.last_read = now = loop.time()
        if timeout is not None:
            self._timeout = timeout
            self._timer = loop.call_at(now + timeout, self._check_quiet)
        self.transport.write(request)

    def _check_quiet(self) -> None:
        """The read timeout: the provider sent nothing for ``timeout`` seconds. One timer per
        request, moved on only when it fires early (bytes came meanwhile), not per read."""
        self._timer = None
        if self.exchange is None:
            return
        due = self.last_read + self._timeout
        if due > self.pool.loop.time():
            self._timer = self.pool.loop.call_at(due, self._check_quiet)
            return
        self._fail(httpx.ReadTimeout("the provider sent nothing within the timeout"))

    def _finish(self, answer: Answer | None, error: BaseException | None) -> None:
        exchange, self.exchange = self.exchange, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if exchange is None or exchange.waiter.done():
            return
        if error is not None:
            exchange.waiter.set_exception(error)
        else:
            exchange.waiter.set_result(answer)  # type: ignore[arg-type]

    def _fail(self, error: BaseException) -> None:
        self.close()
        self._finish(None, error)

    def abandon(self) -> None:
        """The caller stopped waiting (cancelled: a deadline): the connection cannot be reused."""
        self.exchange = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for (on an idle connection): not reusable
            self.close()
            return
        exchange.started = True
        self.last_read = self.pool.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, (BodyTooLarge, Undecodable)) else
                       httpx.RemoteProtocolError("the answer could not be parsed"))
        except httptools.HttpParserError:
            self._fail(httpx.RemoteProtocolError("the answer could not be parsed"))
            return
        if exchange.body is None and self.exchange is exchange:  # its head is still incomplete
            exchange.head_bytes += len(data)
            if exchange.head_bytes > MAX_HEAD_BYTES:
                self._fail(httpx.RemoteProtocolError(f"the answer's head is larger than {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        self.closed = True  # never taken from the pool again
        return False  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        exchange = self.exchange
        if exchange is None:
            return
        if exc is None and exchange.framed_by_eof and exchange.body is not None:
            try:
                body = exchange.body.finish()
            except (BodyTooLarge, Undecodable) as error:
                self._finish(None, error)
                return
            self._finish((exchange.status, exchange.headers, body), None)
            return
        if not exchange.started:
            self._finish(None, httpx.ReadError("the connection closed before an answer"))
        else:
            self._finish(None, httpx.RemoteProtocolError("the answer was cut short"))

    # -- httptools' callbacks (raising here surfaces as HttpParserCallbackError) ----------------

    def on_message_begin(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.headers = []
        else:  # an answer after the one asked for (in the same read): the connection is out of step
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        status = exchange.status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim answer (103 Early Hints): the real one follows
        codings: list[str] = []
        framed = False
        for name, value in exchange.headers:
            low = name.lower()
            if low == b"content-encoding":
                codings += value.decode("latin-1").split(",")
            elif low == b"content-length" or low == b"transfer-encoding":
                framed = True
        exchange.framed_by_eof = not framed and status not in (204, 304)
        exchange.body = BoundedBody(codings if exchange.decode else [], exchange.limit)

    def on_body(self, chunk: bytes) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.body is not None:
            exchange.body.feed(chunk)

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        status = exchange.status
        if 100 <= status < 200:
            if status == 101:
                self.pool.loop.call_soon(self._fail, httpx.RemoteProtocolError("the provider switched protocols"))
            return
        body = exchange.body.finish() if exchange.body is not None else b""
        answer = (status, exchange.headers, body)
        if self.parser.should_keep_alive() and not exchange.framed_by_eof:
            self._finish(answer, None)
            self.pool.put(self)
        else:
            self.close()
            self._finish(answer, None)


class Pool:
    """The kept-alive connections to one origin (``scheme://host:port``). How many requests
    run at once is bounded by the caller (``Upstream``'s slots), so this never queues."""

    def __init__(self, scheme: str, host: str, port: int, ssl_context: Callable[[], ssl.SSLContext]) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self._ssl_context = ssl_context
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # the first request's
        self._idle: list[Connection] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self.opened = 0  # connections made (tests read it: reuse is behaviour)

    async def request(self, method: str, target: str, headers: list[tuple[str, str]], content: bytes | None,
                      timeout: float | None, limit: int, *, decode: bool = True) -> Answer:
        """Send one request and read its answer: (status, raw headers, body).

        ``target`` is the path and query as they go on the wire; ``headers`` all of them, Host
        included, in order (Content-Length is added from ``content``); ``timeout`` bounds the
        connect and each wait for the provider's bytes (None: no bound); ``limit`` the body, raw
        and decoded. ``decode``: the body decoded from its ``Content-Encoding``; else as it came,
        for the caller to decode (``transport.WireTransport``)."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        block = "".join([f"{name}: {value}\r\n" for name, value in headers])
        if block.count("\n") != len(headers) or block.count("\r") != len(headers):
            # (the engine and the config refuse control characters in headers already: a last guard)
            raise httpx.LocalProtocolError("a header holds a line break")
        if content:
            end = f"Content-Length: {len(content)}\r\n\r\n"
        elif method in _NO_LENGTH_WHEN_EMPTY:
            end = "\r\n"
        else:
            end = "Content-Length: 0\r\n\r\n"
        try:
            data = f"{method} {target} HTTP/1.1\r\n{block}{end}".encode("latin-1")
        except UnicodeEncodeError:
            raise httpx.LocalProtocolError("a header is not latin-1") from None
        if content:
            data += content
        connection = self._take() or await self._connect(timeout)
        waiter: asyncio.Future[Answer] = self.loop.create_future()
        connection.send(data, waiter, limit, timeout, decode)
        exchange = connection.exchange
        try:
            return await waiter
        except BaseException:
            # Cancelled (a deadline) while the answer was awaited: the connection cannot be reused.
            # If the answer had come meanwhile, the connection is back in the pool and may already
            # carry another request: that one's, not to be closed.
            if connection.exchange is exchange:
                connection.abandon()
            raise

    def _take(self) -> Connection | None:
        idle = self._idle
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be dropped by the server
            if not connection.closed and self.loop.time() - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            connection.close()
        return None

    async def _connect(self, timeout: float) -> Connection:
        secure = self.scheme == "https"
        try:
            async with asyncio.timeout(timeout):
                _, connection = await self.loop.create_connection(
                    lambda: Connection(self), self.host, self.port,
                    ssl=self._ssl_context() if secure else None, server_hostname=self.host if secure else None)
        except TimeoutError:
            raise httpx.ConnectTimeout("connecting took too long") from None
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, DNS, the TLS handshake: nothing sent
            raise httpx.ConnectError(type(exc).__name__) from None
        self.opened += 1
        return connection

    def put(self, connection: Connection) -> None:
        if connection.closed:
            return
        connection.idle_since = self.loop.time()
        self._idle.append(connection)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(KEEPALIVE_SECONDS, self._sweep)

    def forget(self, connection: Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)

    def _sweep(self) -> None:
        """Close the connections idle for :data:`KEEPALIVE_SECONDS`; one timer per pool, not per request."""
        self._sweeper = None
        now = self.loop.time()
        for connection in [c for c in self._idle if now - c.idle_since >= KEEPALIVE_SECONDS]:
            self._idle.remove(connection)
            connection.close()
        if self._idle:
            oldest = min(c.idle_since for c in self._idle)
            self._sweeper = self.loop.call_at(oldest + KEEPALIVE_SECONDS, self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
