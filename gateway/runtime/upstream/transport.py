"""The gateway's own httpx transport: every provider request the common path (``client._Direct``)
does not take (query parameters, computed credentials, tracing, another origin, a URL httpx
rewrites) and the OAuth2 token requests, carried by :mod:`.wire`'s kept-alive connections.

httpx stays the API: ``Upstream`` builds an ``httpx.Request`` (httpx encodes the URL, the query
and the headers; an authenticator signs or adds its token to it), and ``gateway test`` and the
tests swap in an ``httpx.MockTransport``. Only the bytes go through :mod:`.wire`, the client
measured cheapest (docs/performance.md, rounds 2, 4 and 5): httpcore's pool cost 1-11 ms of CPU
per webhook under concurrency; aiohttp, which carried these requests until round 5, about 310 µs
per call and a tenth of the gateway's startup to import.

What it guarantees (tests/test_transport_wire.py; the fault tests run through it):

- the request's headers sent exactly as httpx built them, in order, with the framing set from the
  body; nothing added;
- the answer's body handed over raw (still encoded), bounded to the provider's
  ``max_response_bytes`` as it arrives: the client (or httpx, for a token request) decodes it;
- wire's errors, as the httpx classes ``client.py`` translates; a scheme other than http and https
  is ``UnsupportedProtocol`` before anything is sent;
- no redirect followed, no cookie kept, no proxy or netrc from the environment;
- one pool per origin: the provider's own (shared with the common path, so both reuse the same
  connections), and the last :data:`MAX_OTHER_ORIGINS` others a step's ``url`` reached.
"""

from __future__ import annotations

import functools
import ssl

import httpx

from . import wire
from .codecs import BodyTooLarge

# Headers httpx puts on a request that the wire sets itself from the body it is given.
FRAMING = frozenset({"content-length", "transfer-encoding"})
_FRAMING_RAW = frozenset(name.encode("ascii") for name in FRAMING)
_PORTS = {"http": 80, "https": 443}
# Origins other than the provider's own kept with their idle connections (a step's `url` taken from
# an answer may name any host; pools beyond these are closed, the least recently used first).
MAX_OTHER_ORIGINS = 8

Origin = tuple[str, str, int]


class AnswerTooLarge(httpx.DecodingError):
    """The answer's bytes passed ``max_response_bytes`` as they arrived (its connection is closed).
    An httpx error, so that whoever sent the request through httpx (an OAuth2 token request)
    sees one; ``Upstream`` says it as the limit it is."""


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every provider: httpx's defaults (certifi's CA store, TLS 1.2+).
    Loading a CA store takes ~15 ms and a few MiB, so not once per provider."""
    return httpx.create_ssl_context(trust_env=False)


def origin_of(url: httpx.URL) -> Origin:
    """(scheme, host as sent in the TLS SNI and DNS lookup, port) of a URL."""
    return (url.scheme, url.raw_host.decode("ascii"), url.port or _PORTS.get(url.scheme, 0))


class WireTransport(httpx.AsyncBaseTransport):
    """One provider's connections, over :class:`.wire.Pool`; answers bounded to ``max_response_bytes``.
    How many requests run at once is bounded by the caller (``Upstream``'s slots)."""

    def __init__(self, max_response_bytes: int) -> None:
        self._limit = max_response_bytes
        self._pools: dict[Origin, wire.Pool] = {}
        self._own: Origin | None = None

    def pool(self, origin: Origin, *, own: bool = False) -> wire.Pool:
        """The pool for ``origin``, made on first use. ``own``: the provider's origin, kept for
        as long as the transport; the others are the last few used."""
        pools = self._pools
        found = pools.get(origin)
        if found is not None:
            if origin != self._own:  # most recently used last
                pools[origin] = pools.pop(origin)
            return found
        if own:
            self._own = origin
        else:
            others = [key for key in pools if key != self._own]
            for key in others[:max(0, len(others) - MAX_OTHER_ORIGINS + 1)]:
                pools.pop(key).close()  # its idle connections; one in use is swept after its answer
        made = pools[origin] = wire.Pool(*origin, shared_ssl_context)
        return made

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in _PORTS:
            raise httpx.UnsupportedProtocol(f"the scheme {url.scheme!r} is neither http nor https")
        if not url.raw_host:
            raise httpx.UnsupportedProtocol("the URL has no host")
        timeout = request.extensions.get("timeout") or {}
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
                   if name.lower() not in _FRAMING_RAW]
        try:
            content = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        try:
            status, raw, body = await self.pool(origin_of(url)).request(
                request.method, url.raw_path.decode("ascii"), headers, content,
                timeout.get("read") or timeout.get("connect"), self._limit, decode=False)
        except BodyTooLarge as exc:
            raise AnswerTooLarge(str(exc), request=request) from None
        return httpx.Response(status, headers=raw, stream=httpx.ByteStream(body), request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()
