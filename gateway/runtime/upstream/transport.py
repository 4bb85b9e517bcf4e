"""What carries the bytes of every provider request the common path (:mod:`.wire`) does not take
(query parameters, computed credentials, tracing, another origin): an httpx transport over one
aiohttp connection pool.

httpx stays the API (``Upstream`` builds ``httpx.Request`` objects, ``gateway test`` and the tests swap
in an ``httpx.MockTransport``); only the bytes go through aiohttp, chosen by measurement
(docs/performance.md): httpcore's pool polls and asks ``getpeername`` of every connection on
every request it assigns (through anyio), which cost 1 ms of CPU per webhook at c=1 and grew to
4-11 ms under concurrency; aiohttp's connector costs a fraction of that and stays flat.

What this transport guarantees, as httpx's did (tests/test_hardening.py, test_decompression.py,
test_provider_errors.py run against it):

- no redirects followed, no decompression (``auto_decompress=False``: the client decodes the
  raw bytes itself with a bound, ``codecs.BoundedBody``), no cookies kept, no proxy or netrc
  from the environment;
- aiohttp's errors become the httpx classes ``client.py`` translates, split by whether the
  request may have left: ``ConnectError``/``ConnectTimeout`` before anything was sent,
  ``ReadTimeout``, ``RemoteProtocolError``/``ReadError`` after;
- the session (and its connector) is created on the first request, in the running loop, so
  starting a gateway with hundreds of providers costs nothing per provider; every provider
  shares one TLS context (loading a CA store takes ~15 ms and a few MiB each).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from typing import AsyncIterator

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

from .wire import KEEPALIVE_SECONDS  # both pools keep idle connections as long

# Headers httpx puts on a request that aiohttp sets itself from the body it is given.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every provider: httpx's defaults (certifi's CA store, TLS 1.2+)."""
    return httpx.create_ssl_context(trust_env=False)


def _mapped(exc: BaseException) -> httpx.TransportError:
    """aiohttp's exception as the httpx class ``client.py`` translates: only a connection that
    could not be made means nothing was sent; anything else may have reached the provider."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connecting took too long
        return httpx.ConnectTimeout(type(exc).__name__)
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return httpx.ReadTimeout(type(exc).__name__)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake: nothing sent
        return httpx.ConnectError(type(exc).__name__)
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        return httpx.UnsupportedProtocol(type(exc).__name__)
    if isinstance(exc, (aiohttp.ClientResponseError, aiohttp.ClientPayloadError)):  # malformed, cut short
        return httpx.RemoteProtocolError(type(exc).__name__)
    return httpx.ReadError(type(exc).__name__)  # reset, closed before answering


# aiohttp adds these when a request lacks them (and offers `br` when brotli is installed, which the
# bounded decoder refuses): a request sends only what httpx would have sent.
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent")


def _unset(headers: CIMultiDict[str]) -> tuple[str, ...] | None:
    """The automatic headers aiohttp must not add to this request; None when it has all of them
    (always, from ``Upstream``: httpx's defaults are in every request). Asking aiohttp to skip
    them on every request cost ~2% of a webhook (a sort and two header copies per request)."""
    if "Accept" in headers and "Accept-Encoding" in headers and "User-Agent" in headers:
        return None
    return _AUTO_HEADERS


@functools.lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    # Connecting may take `connect` (after waiting for a free connection: `pool`); then every
    # read of the answer `read`. Few distinct values (the mapping's timeouts): built once each.
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read,
                                 connect=None if connect is None else connect + (pool or 0))


async def read_raw(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The raw (still encoded) body of an answer as it arrives, aiohttp's errors as httpx's."""
    content = response.content
    try:
        while True:
            chunk = await content.readany()
            if not chunk:
                return
            yield chunk
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise _mapped(exc) from exc


def release(response: aiohttp.ClientResponse) -> None:
    """Done with an answer: its connection back to the pool if it was read to the end, else closed
    (so an answer refused half-read never leaves bytes in a pooled connection)."""
    if response.content.is_eof():
        response.release()
    else:
        response.close()


class _Body(httpx.AsyncByteStream):
    """The raw (still encoded) body as it arrives; closing it before its end closes the
    connection, so an answer refused half-read never leaves bytes in a pooled connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in read_raw(self._response):
            yield chunk

    async def aclose(self) -> None:
        release(self._response)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One provider's connections: at most ``max_connections``, HTTP/1.1, kept alive
    :data:`KEEPALIVE_SECONDS`. Timeouts come from the request (``httpx.Timeout``)."""

    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, ssl=shared_ssl_context(),
                                         keepalive_timeout=KEEPALIVE_SECONDS)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False,
                                              cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout())
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout") or {}
        headers = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                              if k.lower().decode("latin-1") not in _FRAMING)
        try:
            content = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        try:
            response = await session.request(request.method, URL(str(request.url), encoded=True), headers=headers,
                                             data=content or None, allow_redirects=False, skip_auto_headers=_unset(headers),
                                             timeout=_client_timeout(timeout.get("connect"), timeout.get("read"),
                                                                     timeout.get("pool")))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _mapped(exc) from exc
        return httpx.Response(response.status, headers=response.raw_headers, stream=_Body(response),
                              request=request, extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
