"""What the aiohttp transport (every request the common path of gateway.runtime.upstream.wire does
not take: tests/test_wire.py) puts on the wire: exactly the headers it is given, plus the framing
aiohttp sets from the body, never aiohttp's own Accept, Accept-Encoding (which would offer ``br``)
or User-Agent, whether or not the request already has them. A raw socket server on loopback
records the bytes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from multidict import CIMultiDict

from gateway.runtime.upstream.transport import AiohttpTransport


async def _capture(headers: CIMultiDict[str]) -> list[tuple[str, str]]:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = AiohttpTransport(2)
    try:
        request = httpx.Request("POST", f"http://127.0.0.1:{port}/v1/cards", headers=list(headers.items()),
                                content=b'{"a":1}', extensions={"timeout": {"connect": 5.0, "read": 5.0, "pool": 5.0}})
        response = await transport.handle_async_request(request)
        async for _ in response.aiter_raw():
            pass
        await response.aclose()
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
    lines = seen[0].decode("latin-1").split("\r\n")[1:-2]
    return [(name, value.strip()) for name, value in (line.split(":", 1) for line in lines)]


@pytest.mark.parametrize("given", [
    [("Host", "127.0.0.1"), ("Accept", "application/json"), ("Accept-Encoding", "gzip, deflate"), ("User-Agent", "gw/1"),
     ("X-Key", "k"), ("Content-Type", "application/json")],
    # none of aiohttp's automatic headers: it must not add them
    [("Host", "127.0.0.1"), ("X-Key", "k"), ("Content-Type", "application/json")],
    [("Host", "127.0.0.1"), ("Accept-Encoding", "gzip"), ("Content-Type", "application/json")],
])
def test_the_transport_sends_the_headers_it_is_given_and_no_automatic_ones(given):
    # (the engine gives every request with a body its Content-Type; aiohttp would add one otherwise)
    sent = asyncio.run(_capture(CIMultiDict(given)))
    names = [name.lower() for name, _ in sent]
    assert [pair for pair in sent if pair[0].lower() != "content-length"] == given
    assert names.count("content-length") == 1


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
