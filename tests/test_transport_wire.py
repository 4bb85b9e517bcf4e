"""What the gateway's own httpx transport (gateway.runtime.upstream.transport.WireTransport: every
request the common path of gateway.runtime.upstream.wire does not take, and OAuth2 token requests)
puts on the wire and hands back: exactly the headers httpx built, plus the framing set from the
body, nothing added; the answer's body raw and bounded; one pool per origin, the provider's shared
with the common path. Raw socket servers on loopback record the bytes."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest

from gateway.runtime.upstream import transport as wire_transport
from gateway.runtime.upstream.transport import AnswerTooLarge, WireTransport

TIMEOUT = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}


class _Recorder:
    """A loopback server answering ``answer`` to every request, recording each request's head and
    body and how many connections it was sent on."""

    def __init__(self, answer: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}") -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> _Recorder:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.close()


async def _send(transport: WireTransport, request: httpx.Request) -> tuple[httpx.Response, bytes]:
    response = await transport.handle_async_request(request)
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return response, body


async def _capture(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    async with _Recorder() as server:
        transport = WireTransport(1000)
        try:
            request = httpx.Request("POST", f"http://127.0.0.1:{server.port}/v1/cards?a=b%20c", headers=headers,
                                    content=b'{"a":1}', extensions={"timeout": TIMEOUT})
            await _send(transport, request)
        finally:
            await transport.aclose()
    line, *lines = server.requests[0].split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    assert line == "POST /v1/cards?a=b%20c HTTP/1.1"
    return [(name, value.strip()) for name, value in (line.split(":", 1) for line in lines)]


@pytest.mark.parametrize("given", [
    [("Host", "127.0.0.1"), ("Accept", "application/json"), ("Accept-Encoding", "gzip, deflate"), ("User-Agent", "gw/1"),
     ("X-Key", "k"), ("Content-Type", "application/json")],
    # no Accept, Accept-Encoding or User-Agent: none is added
    [("Host", "127.0.0.1"), ("X-Key", "k"), ("Content-Type", "application/json")],
    [("Host", "127.0.0.1"), ("Accept-Encoding", "gzip"), ("Content-Type", "application/json")],
    # a framing header httpx set is replaced by the one the wire sets from the body, never sent twice
    [("Host", "127.0.0.1"), ("Content-Length", "7"), ("Content-Type", "application/json")],
])
def test_the_transport_sends_the_headers_it_is_given_and_no_automatic_ones(given):
    sent = asyncio.run(_capture(given))
    names = [name.lower() for name, _ in sent]
    assert [pair for pair in sent if pair[0].lower() != "content-length"] == [p for p in given if p[0] != "Content-Length"]
    assert names.count("content-length") == 1 and ("Content-Length", "7") in sent


def test_the_body_is_handed_over_raw_for_the_client_to_decode_with_its_bound():
    packed = gzip.compress(b'{"balance": 1}')
    answer = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + str(len(packed)).encode()
              + b"\r\n\r\n" + packed)

    async def main() -> tuple[httpx.Response, bytes, httpx.Response]:
        async with _Recorder(answer) as server:
            transport = WireTransport(1000)
            try:
                url = f"http://127.0.0.1:{server.port}/v1/cards"
                response, raw = await _send(transport, httpx.Request("GET", url, extensions={"timeout": TIMEOUT}))
                # through an httpx client (an OAuth2 token request): httpx decodes it
                async with httpx.AsyncClient(transport=transport) as client:
                    decoded = await client.get(url)
            finally:
                await transport.aclose()
        return response, raw, decoded

    response, raw, decoded = asyncio.run(main())
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert raw == packed
    assert decoded.json() == {"balance": 1}


def test_an_answer_over_the_limit_is_an_httpx_error_that_says_so():
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000

    async def main() -> AnswerTooLarge:
        async with _Recorder(answer) as server:
            transport = WireTransport(1000)
            try:
                request = httpx.Request("GET", f"http://127.0.0.1:{server.port}/", extensions={"timeout": TIMEOUT})
                with pytest.raises(AnswerTooLarge) as caught:
                    await transport.handle_async_request(request)
            finally:
                await transport.aclose()
        return caught.value

    error = asyncio.run(main())
    assert isinstance(error, httpx.HTTPError) and "1000" in str(error)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd"])
def test_a_scheme_other_than_http_is_refused_before_anything_is_sent(url):
    async def main() -> None:
        transport = WireTransport(1000)
        with pytest.raises(httpx.UnsupportedProtocol):
            await transport.handle_async_request(httpx.Request("GET", url, extensions={"timeout": TIMEOUT}))
        assert transport._pools == {}

    asyncio.run(main())


def test_the_provider_pool_is_kept_and_other_origins_are_bounded(monkeypatch):
    monkeypatch.setattr(wire_transport, "MAX_OTHER_ORIGINS", 2)

    async def main() -> tuple[_Recorder, list[_Recorder], WireTransport]:
        transport = WireTransport(1000)
        async with _Recorder() as own:
            servers = [await _Recorder().__aenter__() for _ in range(3)]
            try:
                mine = transport.pool(("http", "127.0.0.1", own.port), own=True)
                for server in servers:  # the provider's origin between each other origin
                    for port in (server.port, own.port):
                        await _send(transport, httpx.Request("GET", f"http://127.0.0.1:{port}/", extensions={"timeout": TIMEOUT}))
                assert transport.pool(("http", "127.0.0.1", own.port)) is mine
                kept = [key[2] for key in transport._pools if key[2] != own.port]
                assert kept == [servers[1].port, servers[2].port]  # the first other origin's pool was closed
            finally:
                await transport.aclose()
                for server in servers:
                    await server.__aexit__()
        return own, servers, transport

    own, servers, transport = asyncio.run(main())
    assert own.connections == 1 and len(own.requests) == 3  # one kept-alive connection for the provider's origin
    assert transport._pools == {}


# --- answers cut short: announced with a length (read whole) or chunked (read in chunks) ---------

import socketserver  # noqa: E402
import threading  # noqa: E402

from .conftest import client_for, sandbox_provider, write_config  # noqa: E402
from .newstore_spec import EXAMPLES  # noqa: E402

ANSWERS = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"balance\": ",
    "chunked": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"c\r\n{\"balance\": \r\n",
}


class _CutShort(socketserver.BaseRequestHandler):
    answer = b""

    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.request.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += self.request.recv(65536)
        self.request.sendall(self.answer)  # then the connection closes, the answer incomplete


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_an_answer_cut_short_is_an_unknown_outcome_however_it_was_framed(framing, sandbox, tmp_path):
    handler = type("Handler", (_CutShort,), {"answer": ANSWERS[framing]})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        entry = sandbox_provider(sandbox)
        entry["vars"] = {"base_url": f"http://127.0.0.1:{server.server_address[1]}"}
        with client_for(write_config(tmp_path, {"sandbox": entry})) as client:
            response = client.post("/sandbox/gift_card/balance", json=EXAMPLES["balance"])
    finally:
        server.shutdown()
        server.server_close()
    body = response.json()
    assert response.status_code == 502, body
    assert body["request_accepted"] is True and "the connection to the provider failed" in body["message"], body
