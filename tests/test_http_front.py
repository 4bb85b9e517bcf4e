"""The HTTP front of `gateway serve`, over raw sockets: smuggling, slow clients, malformed HTTP.

One `gateway serve` process (no companions) with short timeouts serves the whole module against
the sandbox simulator; each test opens its own connection and writes bytes by hand, because an
HTTP client library would refuse to send what these tests send.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from .conftest import ROOT, Sandbox, sandbox_provider, write_config
from .newstore_spec import EXAMPLES, check_error

BODY_TIMEOUT = 1.0
HEADER_TIMEOUT = 1.5
KEEP_ALIVE_TIMEOUT = 1.0
MARGIN = 2.0  # scheduling slack on a busy CI machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Front:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


@pytest.fixture(scope="module")
def front(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    tmp = tmp_path_factory.mktemp("front")
    config = write_config(tmp, {"sandbox": sandbox_provider(sandbox)}, idempotency={
        "store": f"sqlite:///{tmp}/idempotency.sqlite3", "key_file": str(tmp / "idempotency.key")})
    port = _free_port()
    log = tmp / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port),
             "--no-companions", "--body-timeout", str(BODY_TIMEOUT), "--header-timeout", str(HEADER_TIMEOUT),
             "--keep-alive-timeout", str(KEEP_ALIVE_TIMEOUT)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gateway serve did not start: {log.read_text()}")
            time.sleep(0.1)
        yield Front(port, log)
    finally:
        proc.terminate()
        proc.wait(20)


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, bool, float]:
    """Everything the server sends within ``limit`` seconds; whether it closed; when it did."""
    start = time.monotonic()
    data = b""
    while True:
        left = limit - (time.monotonic() - start)
        if left <= 0:
            return data, False, time.monotonic() - start
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False, time.monotonic() - start
        except ConnectionResetError:
            return data, True, time.monotonic() - start
        if not chunk:
            return data, True, time.monotonic() - start
        data += chunk


def _read_one_answer(sock: socket.socket, limit: float) -> bytes:
    """One whole answer (framed by its Content-Length), as soon as it is in: a test that then
    waited a fixed time could outlast the keep-alive timeout of the connection it reuses."""
    start = time.monotonic()
    data = b""
    while True:
        head, found, rest = data.partition(b"\r\n\r\n")
        if found:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(rest) >= length:
                return data
        left = limit - (time.monotonic() - start)
        if left <= 0:
            return data
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return data
        if not chunk:
            return data
        data += chunk


def _responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split what the server sent into (status, headers, body) by Content-Length."""
    assert data.startswith(b"HTTP/1.1 "), data
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers["content-length"]) if "content-length" in headers else len(rest)  # else: until close
        out.append((status, headers, rest[:length]))
        data = rest[length:]
    return out


def _post(path: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: gateway.test", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


BALANCE = json.dumps(EXAMPLES["balance"] | {"identifier": {"number": "6006491111111111", "pin": "480163"}}).encode()


def _error(response: tuple[int, dict[str, str], bytes], status: int, error_code: str) -> dict:
    got_status, headers, body = response
    assert got_status == status, response
    assert headers["content-type"] == "application/json", response
    error = json.loads(body)
    check_error(error)
    assert error["error_code"] == error_code and error["request_accepted"] is False, error
    return error


# --- request smuggling (RFC 9112 §6.1) --------------------------------------------------------


@pytest.mark.parametrize("order", ["content-length first", "transfer-encoding first"])
def test_content_length_with_transfer_encoding_is_400_and_closed_and_the_smuggled_request_never_runs(
        front, sandbox, order):
    smuggled = _post("/sandbox/gift_card/balance", BALANCE)
    body = b"0\r\n\r\n" + smuggled  # chunked: an empty body, then the smuggled request
    framing = [f"Content-Length: {len(body)}", "Transfer-Encoding: chunked"]
    if order != "content-length first":
        framing.reverse()
    head = ["POST /sandbox/gift_card/balance HTTP/1.1", "Host: gateway.test", "Content-Type: application/json",
            *framing]
    with front.connect() as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        data, closed, _ = _read_until_closed(sock, 5)
    responses = _responses(data)
    assert len(responses) == 1, data
    _error(responses[0], 400, "invalid_request")
    assert responses[0][1]["connection"] == "close"
    assert closed, "the connection must be closed after a request with both Content-Length and Transfer-Encoding"
    time.sleep(0.3)  # were it to run, the smuggled webhook would have called the provider by now
    assert sandbox.calls() == [], "the smuggled request reached the provider"


def test_a_normal_webhook_and_a_second_one_on_the_same_connection_still_work(front, sandbox):
    with front.connect() as sock:
        sock.sendall(_post("/sandbox/gift_card/balance", BALANCE))
        first = _read_one_answer(sock, 5.0)  # keep-alive: the server keeps it open
        body = BALANCE
        sock.sendall(_post("/sandbox/gift_card/balance", body)[:-10])
        time.sleep(BODY_TIMEOUT / 3)  # a body in two parts, well within the body timeout
        sock.sendall(body[-10:])
        second, _, _ = _read_until_closed(sock, 0.9)
    for data in (first, second):
        [(status, _, content)] = _responses(data)
        assert (status, json.loads(content)) == (200, {"value": 50.0, "currency": "USD"}), data
    assert len(sandbox.calls()) == 2


# --- slow and idle clients -------------------------------------------------------------------


def test_a_stalled_body_is_answered_408_request_timeout_and_closed(front, sandbox):
    with front.connect() as sock:
        sock.sendall(b"POST /sandbox/gift_card/balance HTTP/1.1\r\nHost: gateway.test\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + BALANCE[:5])
        data, closed, elapsed = _read_until_closed(sock, BODY_TIMEOUT + MARGIN)
    assert data, f"no answer within {BODY_TIMEOUT + MARGIN}s to a body that stopped after 5 of 100 bytes"
    [response] = _responses(data)
    error = _error(response, 408, "request_timeout")
    assert "body" in error["message"]
    assert response[1]["connection"] == "close"
    assert closed
    assert elapsed >= BODY_TIMEOUT * 0.9, "answered before the body timeout"
    assert sandbox.calls() == []


def test_an_idle_keep_alive_connection_is_closed(front):
    with front.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        data, closed, elapsed = _read_until_closed(sock, KEEP_ALIVE_TIMEOUT + MARGIN)
    [(status, _, _)] = _responses(data)
    assert status == 200
    assert closed, f"an idle keep-alive connection was still open after {KEEP_ALIVE_TIMEOUT + MARGIN}s"


def test_a_connection_that_never_sends_a_byte_is_closed(front):
    with front.connect() as sock:
        data, closed, _ = _read_until_closed(sock, HEADER_TIMEOUT + MARGIN)
    assert closed, f"a silent connection was still open after {HEADER_TIMEOUT + MARGIN}s"
    assert data == b""


def _dribble(sock: socket.socket, start: bytes, byte: bytes, limit: float) -> tuple[bytes, bool, float]:
    """Send ``start``, then ``byte`` every 0.1 s until the server answers or closes (or ``limit``)."""
    began = time.monotonic()
    sock.sendall(start)
    while time.monotonic() - began < limit:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            data, closed, _ = _read_until_closed(sock, limit - (time.monotonic() - began))
            return data, closed, time.monotonic() - began
        try:
            sock.sendall(byte)
        except (BrokenPipeError, ConnectionResetError):
            return b"", True, time.monotonic() - began
    return b"", False, time.monotonic() - began


def test_headers_dribbled_byte_by_byte_get_408_and_the_connection_closed(front):
    with front.connect() as sock:
        data, closed, elapsed = _dribble(
            sock, b"POST /sandbox/gift_card/balance HTTP/1.1\r\nHost: gateway.test\r\nX-Slow: ", b"a",
            HEADER_TIMEOUT + MARGIN)
    assert closed, f"a client dribbling headers was still connected after {HEADER_TIMEOUT + MARGIN}s"
    [response] = _responses(data)
    _error(response, 408, "request_timeout")


def test_a_body_dribbled_to_a_request_answered_without_reading_it_is_cut_off(front):
    # A wrong path is answered at once (404) without reading the body; the rest keeps dribbling in.
    with front.connect() as sock:
        data, closed, elapsed = _dribble(
            sock, b"POST /nowhere HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 100000\r\n\r\n{", b" ", 0.5)
        assert _responses(data)[0][0] == 404
        if not closed:
            more, closed, _ = _dribble(sock, b" ", b" ", BODY_TIMEOUT + 1 + MARGIN)
    assert closed, "a client dribbling a body nobody reads was never disconnected"


# --- malformed HTTP --------------------------------------------------------------------------


def test_an_unparseable_request_gets_an_error_body_and_the_connection_closed(front):
    with front.connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway.test\r\nBad Header Name: x\r\n\r\n")
        data, closed, _ = _read_until_closed(sock, 3)
    [response] = _responses(data)
    _error(response, 400, "invalid_request")
    assert closed


def test_oversized_headers_get_431_and_the_connection_closed(front):
    with front.connect() as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway.test\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: the answer is already in our receive buffer
        data, closed, _ = _read_until_closed(sock, 3)
    [response] = _responses(data)
    _error(response, 431, "request_headers_too_large")
    assert closed
