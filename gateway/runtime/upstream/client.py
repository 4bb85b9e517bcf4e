"""One pooled client per provider, and the one place transport errors are translated.

With the gateway's own transport, the common request (the provider's origin, a URL sent as it
is, fixed or no credentials, no tracing: :class:`_Direct`) is written by :mod:`.wire` on its
kept-alive connections. Every other request is an ``httpx.Request`` handed straight to the
provider's transport: by default :class:`~.transport.WireTransport`, over the same connections.
Both chosen by measurement (docs/performance.md). Clients are created at startup from the
plan and an injected transport factory, and closed at shutdown; tests and ``gateway test`` swap
the transport (then every request goes through it), never patch functions.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from dataclasses import dataclass
from typing import Callable, Mapping

import httpx

from ...auth import AuthError
from ...auth.kind import Authenticator, StaticAuthenticator
from ...errors import (
    UpstreamBadResponse,
    UpstreamConnectionLost,
    UpstreamFailure,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from ...observe import metrics, tracing
from ...plan import ProviderPlan
from ..trace import OutboundRequest
from . import codecs, wire
from .transport import FRAMING, AnswerTooLarge, WireTransport, origin_of

# httpx logs every request line at INFO, and a provider URL may carry a card number (codes in
# paths): keep those loggers quiet whatever logging the embedding application configures.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

# Providers see who calls them (a mapping may set its own `User-Agent` header, which wins).
USER_AGENT = f"newstore-gift-card-gateway/{tracing.version()}"
# Offer only the codings _read can decode with a bound (httpx would add zstd/br).
CLIENT_HEADERS = {"Accept-Encoding": codecs.ACCEPT_ENCODING, "User-Agent": USER_AGENT}


@functools.cache
def client_headers() -> tuple[tuple[str, str], ...]:
    """The headers every provider's httpx client sends unless a request sets its own: httpx's
    defaults with :data:`CLIENT_HEADERS`, as one client (over no transport) has them."""
    client = httpx.AsyncClient(transport=httpx.AsyncBaseTransport(), trust_env=False, headers=CLIENT_HEADERS)
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in client.headers.raw)


TransportFactory = Callable[[ProviderPlan], httpx.AsyncBaseTransport | None]


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 4-5x (built per webhook)
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes


def _failure(cls: type[UpstreamFailure], step: str, message: str, *, maybe_sent: bool) -> UpstreamFailure:
    """The request did not produce a response: httpx's errors become the gateway's here, once.
    ``request_accepted`` says whether the request may have reached the provider (a read
    timeout) or certainly did not (connection refused); the engine adds earlier steps."""
    unknown = "; the outcome is unknown" if maybe_sent else ""
    return cls(f"step `{step}`: {message}{unknown}", request_accepted=maybe_sent, details={"step": step})


def default_transport(provider: ProviderPlan) -> httpx.AsyncBaseTransport:
    return WireTransport(provider.mapping.max_response_bytes)


class Upstream:
    """The connection to one provider.

    Credentials go only to the provider's own origin (scheme, host and port of its base URL):
    a step whose ``url`` points elsewhere (a link taken from an answer) is sent without them.
    Answers are read up to ``max_response_bytes`` (after decompression), so a huge or
    decompression-bomb answer cannot exhaust memory.
    """

    def __init__(self, provider: ProviderPlan, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.provider = provider
        self._transport = transport or default_transport(provider)
        self._client: httpx.AsyncClient | None = None  # made for the first request that needs httpx
        self.closed = False
        self.auth = provider.auth.authenticator()
        self.auth.fetched = functools.partial(metrics.token_fetched, provider.name)  # type: ignore[method-assign]
        base = _parsed(provider.base_url)
        self._origin = _origin_parts(base)
        self._direct = _Direct.for_(self._transport, client_headers(), self.auth, base)
        self._limit = provider.mapping.max_response_bytes
        # At most `max_connections` requests in flight to the provider; the rest wait here, in
        # order. This bounds the connections the transport opens (its pools never queue). (With
        # httpx's own pool, httpcore rescanned every queued request against every connection on
        # each change: a burst of a thousand webhooks stalled the event loop for minutes.)
        self._slots = asyncio.Semaphore(provider.max_connections)

    @property
    def http(self) -> httpx.AsyncClient:
        """The httpx client of the requests the direct path does not take, over this provider's
        transport. Made on first use: with the direct path, most providers never need it, and
        making one cost ~7% of starting a gateway with 500 providers."""
        client = self._client
        if client is None:
            client = self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(self.provider.mapping.timeout),
                follow_redirects=False,
                trust_env=False,
                headers=CLIENT_HEADERS,
            )
        return client

    async def send(self, request: OutboundRequest, *, timeout: float, step: str = "") -> UpstreamResponse:
        """Send one step's request, once one of the provider's connections is free (waiting at
        most ``timeout``, as httpx's own pool timeout would)."""
        try:
            if self._slots.locked():  # every connection busy: wait for one, at most `timeout`
                async with asyncio.timeout(timeout):
                    await self._slots.acquire()
            else:  # a slot is free: taken at once, no timer to set and cancel
                await self._slots.acquire()
        except TimeoutError:
            raise _failure(UpstreamUnreachable, step, f"cannot connect to the provider (all {self.provider.max_connections} "
                                                       f"connections stayed busy for {timeout:g}s)", maybe_sent=False) from None
        try:
            if tracing.TRACER is None:
                return await self._send(request, timeout=timeout, step=step)
            return await self._traced(tracing.TRACER, request, timeout=timeout, step=step)
        finally:
            self._slots.release()

    async def _traced(self, tracer: tracing.Tracer, request: OutboundRequest, *, timeout: float,
                      step: str) -> UpstreamResponse:
        """A client span around one call; ``_send`` puts its context in the ``traceparent`` header.
        The URL is shown as its host and the mapping's template: the rendered path may hold a card number."""
        url = httpx.URL(request.url)
        with tracing.client_span(tracer, f"{request.method} {step}", {
            "gateway.step": step, "http.request.method": request.method, "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80), "url.scheme": url.scheme,
            "url.template": request.route or None, "gateway.provider": self.provider.name,
        }) as span:
            try:
                response = await self._send(request, timeout=timeout, step=step)
            except UpstreamFailure as exc:
                tracing.finish(span, {}, error=type(exc).__name__)
                raise
            tracing.finish(span, {"http.response.status_code": response.status},
                           error=str(response.status) if response.status >= 500 else None)
            return response

    async def _send(self, outbound: OutboundRequest, *, timeout: float, step: str) -> UpstreamResponse:
        """Send one step's request. The step's name travels in the request's extensions, so
        a swapped-in transport (``gateway test``) knows which canned answer to give."""
        direct = self._direct
        if direct is not None and tracing.TRACER is None and not outbound.params and direct.takes(outbound.url):
            try:
                return await self._send_direct(direct, outbound, timeout, step)
            except httpx.HTTPError as exc:
                raise _translated(exc, step, timeout) from exc
        own = _origin(outbound.url) == self._origin
        try:
            client = self.http
            request = client.build_request(outbound.method, outbound.url, params=outbound.params or None,
                                           headers=outbound.headers, content=outbound.content, timeout=timeout,
                                           extensions={"gateway_step": step})
            if tracing.TRACER is not None:
                tracing.inject(request.headers)  # W3C traceparent: the provider's spans join ours
            if own:
                await self.auth.apply(request, client)
            # Straight to the transport: AsyncClient.send's cookies, auth flow, redirects and
            # event hooks are nothing the gateway uses (it follows no redirect and keeps no
            # cookie), and cost a third of httpx's time per request (docs/performance.md).
            response = await self._transport.handle_async_request(request)
            if own and response.status_code == 401 and self.auth.refreshable:
                # The cached token may have been revoked or expired early: one fresh token, one retry.
                await response.aclose()
                self.auth.invalidate()
                await self.auth.apply(request, client)
                response = await self._transport.handle_async_request(request)
            try:
                body = await self._read(response, step)
            finally:
                await response.aclose()
        except AuthError as exc:
            raise _failure(UpstreamUnreachable, step, f"could not authenticate to the provider: {exc}", maybe_sent=False) from None
        except AnswerTooLarge as exc:
            raise _failure(UpstreamBadResponse, step, str(exc), maybe_sent=True) from None
        except UnicodeEncodeError as exc:  # a header value httpx cannot encode: nothing was sent
            raise _failure(UpstreamUnreachable, step, f"the request could not be sent ({type(exc).__name__})", maybe_sent=False) from exc
        except httpx.HTTPError as exc:
            raise _translated(exc, step, timeout) from exc
        return UpstreamResponse(response.status_code, response.headers, body)

    async def _send_direct(self, direct: _Direct, outbound: OutboundRequest, timeout: float,
                           step: str) -> UpstreamResponse:
        """The same request and the same bytes on the wire as through httpx (``_Direct`` says when that
        holds), without building an ``httpx.Request`` (docs/performance.md, rounds 2 and 4)."""
        try:
            status, raw, body = await direct.pool.request(outbound.method, outbound.url[direct.target_from:],
                                                          direct.headers(outbound.headers), outbound.content,
                                                          timeout, self._limit)
        except codecs.BodyTooLarge as exc:
            raise _failure(UpstreamBadResponse, step, str(exc), maybe_sent=True) from None
        except codecs.Undecodable as exc:
            raise _failure(UpstreamBadResponse, step, f"the provider's answer could not be read ({exc})", maybe_sent=True) from None
        return UpstreamResponse(status, plain_headers(raw), body)

    async def _read(self, response: httpx.Response, step: str) -> bytes:
        """The body, decoded from its raw bytes here rather than by httpx (whose decoders
        inflate each network chunk whole), so the limit holds on decompressed bytes as they
        are produced and on the raw bytes too. Never quotes the body in an error."""
        if response.is_stream_consumed:
            # An in-process transport (``gateway test``'s canned answers) hands over a body
            # httpx has already read and decoded: nothing came over the network.
            body = response.content
            if len(body) > self._limit:
                raise _failure(UpstreamBadResponse, step, f"the provider's answer is larger than {self._limit} bytes", maybe_sent=True)
            return body
        try:
            decoder = codecs.BoundedBody(response.headers.get_list("content-encoding", split_commas=True), self._limit)
            async for raw in response.aiter_raw():
                decoder.feed(raw)
            return decoder.finish()
        except codecs.BodyTooLarge as exc:
            raise _failure(UpstreamBadResponse, step, str(exc), maybe_sent=True) from None
        except codecs.Undecodable as exc:
            raise _failure(UpstreamBadResponse, step, f"the provider's answer could not be read ({exc})", maybe_sent=True) from None

    async def aclose(self) -> None:
        self.closed = True
        # The client closes its transport; the transport closes every pool (the direct path's too).
        await (self._client.aclose() if self._client is not None else self._transport.aclose())


def plain_headers(raw: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """An answer's headers as ``dict(httpx.Headers(raw))`` gives them (lowercase names, repeated
    ones joined by ``", "``), without building the ``httpx.Headers`` (whose lookups were ~4% of a
    webhook's time). Header values that are not ASCII are left to httpx's choice of encoding."""
    out: dict[str, str] = {}
    try:
        for name, value in raw:
            key = name.decode("ascii").lower()
            text = value.decode("ascii")
            out[key] = out[key] + ", " + text if key in out else text
    except UnicodeDecodeError:
        return dict(httpx.Headers(raw))
    return out


def _translated(exc: httpx.HTTPError, step: str, timeout: float) -> UpstreamFailure:
    """httpx's error (also what wire raises) as the gateway's, once."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return _failure(UpstreamUnreachable, step, f"cannot connect to the provider ({type(exc).__name__})", maybe_sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return _failure(UpstreamTimeout, step, f"the provider did not answer within {timeout:g}s", maybe_sent=True)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ProxyError)):
        return _failure(UpstreamConnectionLost, step, f"the connection to the provider failed ({type(exc).__name__})", maybe_sent=True)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL)):
        # Raised before anything is written to the socket. The message may quote a header
        # value (a secret, a key), so it is not repeated.
        return _failure(UpstreamUnreachable, step, f"the request could not be sent ({type(exc).__name__})", maybe_sent=False)
    # DecodingError and the rest: after the request went out
    return _failure(UpstreamBadResponse, step, f"the provider's answer could not be read ({type(exc).__name__})", maybe_sent=True)


# Characters httpx sends as they are (it percent-encodes the others): a path, and a query.
_AS_IS = re.compile(r"[!$-;=@-_a-z|~]*(?:\?[!$-;=?-~]+)?")


class _Direct:
    """When ``Upstream`` may send a request without httpx (on :mod:`.wire`'s connections to the
    provider's origin), and the headers httpx would have sent then.

    Only with the gateway's own transport (a swapped-in one, ``gateway test``'s
    ``httpx.MockTransport``, gets ``httpx.Request`` objects as before), credentials that are fixed
    headers or none (a token or a signature is computed on the ``httpx.Request``), and a URL on
    the provider's own origin that httpx would send unchanged: no character it would
    percent-encode, no ``.``/``..`` segment it would remove, no query parameters to merge.
    Tracing off (its header is injected into the ``httpx.Request``)."""

    def __init__(self, pool: wire.Pool, prefix: str, host: str, defaults: list[tuple[str, str]],
                 credentials: list[tuple[str, str]]) -> None:
        self.pool = pool
        self.prefix = prefix
        self.target_from = len(prefix) - 1  # the URL from the path's "/" on: what the request line carries
        self._host = host
        self._defaults = defaults
        self._default_names = {name.lower() for name, _ in defaults}
        self._credentials = credentials
        self._layouts: dict[tuple[str, ...], list[tuple[str, str | int]]] = {}

    @classmethod
    def for_(cls, transport: httpx.AsyncBaseTransport, defaults: tuple[tuple[str, str], ...], auth: Authenticator,
             base_url: httpx.URL | None) -> _Direct | None:
        """``defaults``: the headers the provider's httpx client would add (:func:`client_headers`)."""
        if not isinstance(transport, WireTransport) or type(auth) not in (Authenticator, StaticAuthenticator):
            return None
        if base_url is None:
            return None
        try:
            origin = base_url.copy_with(raw_path=b"/", fragment=None)
        except (httpx.InvalidURL, TypeError):
            return None
        if not origin.host or origin.scheme not in ("http", "https"):
            return None
        credentials = list(getattr(auth, "headers", {}).items())
        pool = transport.pool(origin_of(origin), own=True)  # the connections the transport's requests use too
        return cls(pool, str(origin), origin.netloc.decode("ascii"), list(defaults), credentials)

    def takes(self, url: str) -> bool:
        if not url.startswith(self.prefix) or len(url) > 65536:
            return False
        rest = url[len(self.prefix):]
        if _AS_IS.fullmatch(rest) is None:
            return False
        path = rest.split("?", 1)[0]
        return "." not in path or not any(part in (".", "..") for part in path.split("/"))

    def headers(self, step_headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """The headers httpx would send, in its order: ``Host`` (unless the step sets one), the
        client's defaults less those the step sets, the step's, then the credentials set in
        place (``StaticAuthenticator.apply``). Framing headers are the wire's to set (from the
        body), as in ``WireTransport.handle_async_request``.

        Which names go where depends only on the step's header names, so that layout is worked
        out once per set of names (a step sends the same names every time) and filled with the
        values."""
        names = tuple(step_headers)
        layout = self._layouts.get(names)
        if layout is None:
            layout = self._layout(names)
            if len(self._layouts) < 1024:  # names are the mapping's: few; a bound all the same
                self._layouts[names] = layout
        values = tuple(step_headers.values())
        return [(name, values[value] if type(value) is int else value) for name, value in layout]

    def _layout(self, names: tuple[str, ...]) -> list[tuple[str, str | int]]:
        """(name, fixed value or the position of the step's value) for each header sent."""
        items: list[tuple[str, str | int]]
        if names:
            lowered = {name.lower() for name in names}
            items = [] if "host" in lowered else [("Host", self._host)]
            items += [pair for pair in self._defaults if pair[0].lower() not in lowered]
            items += [(name, position) for position, name in enumerate(names)]
        else:
            items = [("Host", self._host), *self._defaults]
        for name, value in self._credentials:
            low = name.lower()
            found = [i for i, (k, _) in enumerate(items) if k.lower() == low]
            for i in reversed(found[1:]):
                del items[i]
            if found:
                items[found[0]] = (name, value)
            else:
                items.append((name, value))
        return [pair for pair in items if pair[0].lower() not in FRAMING]


def _parsed(url: str) -> httpx.URL | None:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return None


def _origin_parts(url: httpx.URL | None) -> tuple[str, str, int | None]:
    """(scheme, host, port) as httpx reads them: whether a URL is on the provider's own origin."""
    return (url.scheme, url.host, url.port) if url is not None else ("", "", None)


def _origin(url: str) -> tuple[str, str, int | None]:
    return _origin_parts(_parsed(url))
