"""The provider connection pool of the common path (gateway.runtime.upstream.wire), against raw
socket servers on loopback that answer exactly as scripted: what goes on the wire, when a
connection is reused and when it is not, every framing of an answer, and every fault as the
httpx class the client translates (the same classes the aiohttp transport raises)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Awaitable, Callable

import httpx
import pytest

from gateway.runtime.upstream import wire
from gateway.runtime.upstream.codecs import BodyTooLarge
from gateway.runtime.upstream.transport import shared_ssl_context

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
HEADERS = [("Host", "127.0.0.1"), ("Accept", "application/json"), ("User-Agent", "gw/1"),
           ("Content-Type", "application/json")]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class Server:
    """A loopback server; ``handler(reader, writer, n)`` runs for the n-th connection (from 0)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []  # each request's head and body, as received
        self.closed_by_client = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = self.connections
        self.connections += 1
        try:
            await self.handler(reader, writer, n)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request (head and body), or None when the client closed the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed_by_client += 1
            return None
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.pool = wire.Pool("http", "127.0.0.1", self.port, shared_ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.pool.close()
        self.server.close()
        await self.server.wait_closed()

    async def send(self, method: str = "POST", content: bytes | None = b'{"a":1}', timeout: float = 5.0,
                   limit: int = 1 << 20, headers: list[tuple[str, str]] | None = None) -> wire.Answer:
        return await self.pool.request(method, "/v1/cards?x=1", headers or HEADERS, content, timeout, limit)


def keep_answering(answer: bytes = OK) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server_of[0].read_request(reader) is not None:
            writer.write(answer)
            await writer.drain()
    return handler


server_of: list[Server] = []  # the running test's server, for the handlers above


def run(handler: Handler, body: Callable[[Server], Awaitable[object]]) -> object:
    async def main() -> object:
        async with Server(handler) as server:
            server_of[:] = [server]
            return await body(server)
    return asyncio.run(main())


def test_a_request_goes_on_the_wire_as_given_and_connections_are_reused():
    async def body(server: Server) -> None:
        for _ in range(5):
            status, headers, content = await server.send()
            assert (status, content) == (200, b'{"ok":true}')
            assert (b"Content-Type", b"application/json") in headers
        await server.send("GET", None)
        await server.send("DELETE", None)
        assert server.pool.opened == 1 and server.connections == 1

    run(keep_answering(), body)
    [server] = server_of
    first = server.requests[0].decode("latin-1")
    assert first == ("POST /v1/cards?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nUser-Agent: gw/1\r\n"
                     "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
    # Without a body: no length for GET, `Content-Length: 0` otherwise (as aiohttp sends them)
    assert b"content-length" not in server.requests[5].lower()
    assert server.requests[6].endswith(b"Content-Length: 0\r\n\r\n")


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent():
    async def body(server: Server) -> None:
        with pytest.raises(httpx.LocalProtocolError):
            await server.send(headers=[*HEADERS, ("X-Evil", "a\r\nX-Injected: 1")])
        assert server.pool.opened == 0

    run(keep_answering(), body)
    assert server_of[0].requests == []


@pytest.mark.parametrize("answer, reused", [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n", True),
    (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", True),
])
def test_every_framing_is_read_and_the_connection_kept_only_when_it_may_be(answer, reused):
    async def body(server: Server) -> None:
        for _ in range(2):
            status, _, content = await server.send()
            assert (status, content) == ((204, b"") if b" 204 " in answer else (200, b"{}"))
        assert server.pool.opened == (1 if reused else 2)

    run(keep_answering(answer), body)


def test_an_answer_framed_by_the_end_of_the_stream_is_read_to_it():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server_of[0].read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"1}")
        await writer.drain()
        writer.close()

    async def body(server: Server) -> None:
        assert (await server.send())[2] == b'{"a":1}'
        assert (await server.send())[2] == b'{"a":1}'
        assert server.pool.opened == 2

    run(handler, body)


def test_a_connection_the_provider_closed_while_idle_is_not_used_again():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server_of[0].read_request(reader)
        writer.write(OK)
        await writer.drain()
        writer.close()  # keeps nothing alive, without saying so

    async def body(server: Server) -> None:
        await server.send()
        await asyncio.sleep(0.1)  # the close arrives
        assert (await server.send())[0] == 200
        assert server.pool.opened == 2

    run(handler, body)


def test_idle_connections_are_closed_after_the_keepalive(monkeypatch):
    monkeypatch.setattr(wire, "KEEPALIVE_SECONDS", 0.2)

    async def body(server: Server) -> None:
        await server.send()
        await asyncio.sleep(0.5)  # the sweep closes it: the server sees the client leave
        assert server.closed_by_client == 1
        await server.send()
        assert server.pool.opened == 2

    run(keep_answering(), body)


def test_bytes_on_an_idle_connection_make_it_unusable():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server_of[0].read_request(reader) is not None:
            writer.write(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")  # one answer too many
            await writer.drain()

    async def body(server: Server) -> None:
        await server.send()
        await asyncio.sleep(0.05)
        assert (await server.send())[2] == b'{"ok":true}'  # the extra answer is never taken for this one
        assert server.pool.opened == 2

    run(handler, body)


def test_a_silent_provider_is_a_read_timeout_and_a_slow_but_steady_one_is_not():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server_of[0].read_request(reader)
        if n == 0:
            await asyncio.sleep(5)  # nothing
            return
        for part in (OK[:20], OK[20:40], OK[40:]):  # each part within the timeout, all of it beyond
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.25)

    async def body(server: Server) -> None:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await server.send(timeout=0.3)
        assert time.monotonic() - started < 3
        assert (await server.send(timeout=0.4))[0] == 200

    run(handler, body)


def test_a_refused_connection_is_a_connect_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed

    async def main() -> None:
        pool = wire.Pool("http", "127.0.0.1", port, shared_ssl_context)
        with pytest.raises(httpx.ConnectError):
            await pool.request("POST", "/", HEADERS, b"{}", 2.0, 1000)

    asyncio.run(main())


@pytest.mark.parametrize("answer, error", [
    (b"", httpx.ReadError),  # closed before answering
    (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"a\":", httpx.RemoteProtocolError),  # cut short
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n{\"balance\": \r\n", httpx.RemoteProtocolError),
    (b"SMTP ready\r\n\r\n", httpx.RemoteProtocolError),  # not HTTP
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", httpx.RemoteProtocolError),
])
def test_a_broken_answer_is_an_error_that_says_the_request_may_have_arrived(answer, error):
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server_of[0].read_request(reader)
        writer.write(answer)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    async def body(server: Server) -> None:
        with pytest.raises(error):
            await server.send(timeout=2)

    run(handler, body)


def test_an_answer_over_the_limit_is_refused_and_its_connection_closed():
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000

    async def body(server: Server) -> None:
        with pytest.raises(BodyTooLarge):
            await server.send(limit=1000)
        assert (await server.send(limit=10_000))[2] == b"x" * 5000
        assert server.pool.opened == 2

    run(keep_answering(big), body)


def test_a_request_cancelled_while_waiting_closes_its_connection():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server_of[0].read_request(reader) is not None:
            await asyncio.sleep(0.3 if n == 0 else 0)
            writer.write(OK)
            await writer.drain()

    async def body(server: Server) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await server.send()
        # the late answer of the first connection is never read as the next request's
        assert (await server.send())[0] == 200
        assert server.pool.opened == 2

    run(handler, body)


def test_a_request_cancelled_after_its_answer_leaves_the_connection_to_the_next_request():
    """A's answer is read and its connection back in the pool; before A's task resumes, B (another
    webhook) takes that connection and sends, and A's deadline cancels A. A must not close what is
    now B's: B gets its answer, on the same connection."""
    async def body(server: Server) -> None:
        first = asyncio.create_task(server.send())
        while not server.pool._idle:  # A's answer is in, A has not resumed
            await asyncio.sleep(0)
        assert not first.done()
        first.cancel()
        async with asyncio.timeout(5):  # (in this task: B sends before A resumes)
            second = await server.send()  # takes the pooled connection
        assert (second[0], second[2]) == (200, b'{"ok":true}')
        assert server.pool.opened == 1 and len(server.pool._idle) == 1
        with pytest.raises(asyncio.CancelledError):
            await first

    run(keep_answering(), body)


def _self_signed(tmp_path) -> tuple[str, str]:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_https_is_verified_and_kept_alive(tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=cert)
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head)
                await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=served)
        port = server.sockets[0].getsockname()[1]
        try:
            pool = wire.Pool("https", "127.0.0.1", port, lambda: trusting)
            for _ in range(3):
                assert (await pool.request("POST", "/", HEADERS, b"{}", 5.0, 1000))[0] == 200
            assert pool.opened == 1
            pool.close()
            untrusted = wire.Pool("https", "127.0.0.1", port, shared_ssl_context)  # the CA store: not this certificate
            with pytest.raises(httpx.ConnectError):
                await untrusted.request("POST", "/", HEADERS, b"{}", 5.0, 1000)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    assert len(seen) == 3  # nothing sent over the connection that did not verify


def test_an_answer_head_without_end_is_refused_as_it_comes():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server_of[0].read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(4096):  # 4 MiB of headers, then silence: without a bound, a read timeout at best
            writer.write(b"X-Pad-%d: " % i + b"a" * 1000 + b"\r\n")
            await writer.drain()
        await asyncio.sleep(10)

    async def body(server: Server) -> None:
        started = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError, match="head is larger"):
            await server.send(timeout=5)
        assert time.monotonic() - started < 4

    run(handler, body)
