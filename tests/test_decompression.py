"""Compressed provider answers: the size limit holds on the decompressed bytes as they are
produced, and on the raw bytes too, so a decompression bomb is refused without being inflated.

The fake provider is a socket-level HTTP/1.1 server on loopback; the gateway reads it over real
TCP. The memory test runs the gateway in its own process and reads its peak RSS from /proc.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Iterable, Iterator

import httpx
import pytest

from gateway.runtime.upstream import codecs

from .conftest import ROOT, client_for, write_config

LIMIT = 1_048_576  # the mappings' default max_response_bytes
MARKER = "6006491234567890"  # card-number-like bytes inside answers; never in a message or log
GIB = 1 << 30


# --- bombs -----------------------------------------------------------------------------------


@functools.cache
def _deflate_of_zeros(mib: int = GIB >> 20) -> tuple[bytes, int, int]:
    """Raw deflate of ``mib`` MiB of zeros (~1 KiB each), with their CRC-32 and Adler-32.

    Each MiB is compressed after a full flush, which resets the compressor, so every MiB
    compresses to the same bytes: one is compressed and repeated, instead of deflating a GiB.
    """
    zeros = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH) == segment
    crc, adler = 0, 1
    for _ in range(mib):
        crc, adler = zlib.crc32(zeros, crc), zlib.adler32(zeros, adler)
    return segment * mib + compressor.flush(), crc, adler


def gzip_bomb(mib: int = GIB >> 20) -> bytes:
    raw, crc, _ = _deflate_of_zeros(mib)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)


def zlib_bomb(mib: int = GIB >> 20) -> bytes:
    raw, _, adler = _deflate_of_zeros(mib)
    return b"\x78\xda" + raw + struct.pack(">I", adler)


def raw_deflate_bomb(mib: int = GIB >> 20) -> bytes:
    return _deflate_of_zeros(mib)[0]


def test_the_bombs_are_what_they_claim():
    """Built the same way at 16 MiB, they inflate exactly, checksums and all; at 1 GiB they
    are about 1 MiB (inflating a whole GiB here would take seconds per bomb)."""
    zeros = bytes(16 << 20)
    assert gzip.decompress(gzip_bomb(16)) == zeros
    assert zlib.decompress(zlib_bomb(16)) == zeros
    assert zlib.decompress(raw_deflate_bomb(16), -zlib.MAX_WBITS) == zeros
    for bomb in (gzip_bomb(), zlib_bomb(), raw_deflate_bomb()):
        assert 0.9 * LIMIT < len(bomb) < 1.1 * LIMIT
    assert len(raw_deflate_bomb()) - 2 == 1024 * (len(raw_deflate_bomb(16)) - 2) // 16


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def answer(size: int = 0) -> bytes:
    """A JSON answer of exactly ``size`` bytes (or its natural size), with a card-like marker."""
    head = json.dumps({"value": 12.5, "card": MARKER, "pad": ""}).encode()
    return head[:-2] + b"x" * max(0, size - len(head)) + b'"}'


# --- the fake provider -----------------------------------------------------------------------


class Answer:
    def __init__(self, encoding: str | None, body: bytes | None = None, *,
                 chunks: Iterable[bytes] | None = None, length: int | None = None) -> None:
        self.encoding = encoding
        self.body = body
        self.chunks = chunks
        self.length = len(body) if body is not None else length


class FakeProvider:
    """HTTP/1.1 by hand on an asyncio server in its own thread: one answer per path, then close.
    Records each request's headers and, per path, whether the whole answer could be written."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[dict[str, str]] = []
        self.completed: dict[str, list[bool]] = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=128))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path, finished = "", False
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            path = head.split(" ", 2)[1]
            headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
            self.requests.append({k.lower(): v for k, v in headers.items()} | {":path": path})
            await reader.readexactly(int(headers.get("Content-Length") or headers.get("content-length") or 0))
            spec = self.answers[path]
            lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {spec.length}",
                     "Connection: close"]
            if spec.encoding is not None:
                lines.append(f"Content-Encoding: {spec.encoding}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            if spec.body is not None:
                for i in range(0, len(spec.body), 64 * 1024):
                    writer.write(spec.body[i:i + 64 * 1024])
                    await writer.drain()
            else:
                for chunk in spec.chunks or ():
                    writer.write(chunk)
                    await writer.drain()
            await writer.drain()
            finished = True
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.completed.setdefault(path, []).append(finished)
            writer.close()

    def outcome(self, path: str) -> list[bool]:
        """Whether each answer on ``path`` was written whole, once the writes have ended."""
        for _ in range(200):
            if path in self.completed:
                break
            time.sleep(0.05)
        return self.completed[path]

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


MAPPING = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
timeout: 10
headers: {Accept: application/json}
operations:
  balance:
    steps:
      - name: read
        request: {path: "/{{ request.identifier.number }}"}
        extract: {value: value}
    response: {value: "{{ steps.read.value }}", currency: USD}
  issue: {unsupported: test}
  activate: {unsupported: test}
  deactivate: {unsupported: test}
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    yield fake
    fake.close()


def write_gateway(directory: Path, provider: FakeProvider) -> Path:
    mapping = directory / "bombs.yaml"
    mapping.write_text(MAPPING)
    return write_config(directory, {"p": {"mapping": str(mapping), "vars": {"base_url": provider.url},
                                          "inbound": "none"}})


@pytest.fixture
def gateway(provider, tmp_path):
    with client_for(write_gateway(tmp_path, provider)) as client:
        yield client


def ask(client, provider: FakeProvider, name: str, spec: Answer) -> httpx.Response:
    provider.answers[f"/{name}"] = spec
    return client.post("/p/gift_card/balance", json={"identifier": {"number": name}})


def assert_refused_as_too_large(response: httpx.Response) -> None:
    assert response.status_code == 502, response.text
    payload = response.json()
    assert payload["error_code"] == "provider_bad_response"
    assert payload["request_accepted"] is True
    assert f"larger than {LIMIT} bytes" in payload["message"]


# --- behaviour, in-process gateway -----------------------------------------------------------


@pytest.mark.parametrize(("name", "encoding", "bomb"), [
    ("gzip-bomb", "gzip", gzip_bomb),
    ("zlib-deflate-bomb", "deflate", zlib_bomb),
    ("raw-deflate-bomb", "deflate", raw_deflate_bomb),
    ("x-gzip-bomb", "x-gzip", gzip_bomb),
])
def test_a_decompression_bomb_is_refused_quickly(gateway, provider, name, encoding, bomb):
    body = bomb()
    started = time.monotonic()
    response = ask(gateway, provider, name, Answer(encoding, body))
    elapsed = time.monotonic() - started
    assert_refused_as_too_large(response)
    assert elapsed < 3, f"{elapsed:.1f}s: the bomb was inflated far past the limit"


def test_a_bomb_encoded_twice_is_refused(gateway, provider):
    """`gzip, gzip`: the outer layer inflates to the ~1 MiB inner bomb, which is refused too."""
    twice = gzip.compress(gzip_bomb(), 9)
    response = ask(gateway, provider, "gzip-gzip-bomb", Answer("gzip, gzip", twice))
    assert_refused_as_too_large(response)


def test_a_huge_compressed_stream_is_refused_by_its_raw_size(gateway, provider):
    """50 MB of gzip that inflates to nothing (empty deflate blocks): the raw bytes count too,
    so it is refused after about the limit, not read to its end."""
    empty_block = b"\x00\x00\x00\xff\xff"  # a non-final stored block of length 0
    count = 10_000_000
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = b"\x03\x00" + struct.pack("<II", 0, 0)
    piece = empty_block * (64 * 1024 // len(empty_block) + 1)
    per_piece = len(piece) // len(empty_block)
    chunks = [header] + [piece] * (count // per_piece) + [empty_block * (count % per_piece), trailer]
    length = sum(map(len, chunks))
    assert length > 50_000_000
    started = time.monotonic()
    response = ask(gateway, provider, "huge-stream", Answer("gzip", chunks=chunks, length=length))
    assert_refused_as_too_large(response)
    assert time.monotonic() - started < 5
    assert provider.outcome("/huge-stream") == [False], "the gateway read the whole 50 MB"


@pytest.mark.parametrize(("encoding", "encode"), [
    (None, lambda data: data),
    ("identity", lambda data: data),
    ("gzip", gzip.compress),
    ("x-gzip", gzip.compress),
    ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 defines deflate
    ("deflate", raw_deflate),  # raw, as some servers send it
    ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
    ("deflate, gzip", lambda data: gzip.compress(zlib.compress(data))),
    ("GZIP", gzip.compress),
])
def test_an_encoded_answer_of_exactly_the_limit_is_read(gateway, provider, encoding, encode):
    # The limit is on the decoded bytes, and an answer of exactly the limit is within it.
    body = answer(LIMIT)
    response = ask(gateway, provider, "normal", Answer(encoding, encode(body)))
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 12.5, "currency": "USD"}


@pytest.mark.parametrize(("encoding", "encode"), [
    (None, lambda data: data),
    ("gzip", gzip.compress),
    ("deflate", raw_deflate),
    ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
])
def test_an_answer_one_byte_over_the_limit_once_decoded_is_refused(gateway, provider, caplog, encoding, encode):
    response = ask(gateway, provider, "over", Answer(encoding, encode(answer(LIMIT + 1))))
    assert_refused_as_too_large(response)
    assert MARKER not in response.text
    assert MARKER not in caplog.text


@pytest.mark.parametrize("encoding", ["zstd", "compress", "gzip, br-unknown", "utf-8"])
def test_an_encoding_that_cannot_be_decoded_with_a_bound_is_refused(gateway, provider, caplog, encoding):
    if encoding == "zstd":
        assert "zstd" not in codecs.ACCEPT_ENCODING
    response = ask(gateway, provider, "unknown", Answer(encoding, answer()))
    assert response.status_code == 502, response.text
    payload = response.json()
    assert payload["error_code"] == "provider_bad_response"
    assert payload["request_accepted"] is True
    assert "could not be read" in payload["message"] and "is not supported" in payload["message"]
    assert MARKER not in response.text and MARKER not in caplog.text


def test_br_is_read_only_with_a_brotli_whose_decoder_can_be_bounded(gateway, provider):
    brotli_answer = b'\x0b\x07\x80{"value": 12.5}\x03'  # brotli.compress(b'{"value": 12.5}')
    response = ask(gateway, provider, "brotli", Answer("br", brotli_answer))
    if "br" in codecs.ACCEPT_ENCODING:  # brotli >= 1.2 installed
        assert response.status_code == 200, response.text
        assert response.json() == {"value": 12.5, "currency": "USD"}
    else:
        assert response.status_code == 502
        assert response.json()["error_code"] == "provider_bad_response"
        assert "Content-Encoding `br` is not supported" in response.json()["message"]


def test_a_brotli_bomb_is_refused_when_brotli_is_installed(gateway, provider):
    brotli = pytest.importorskip("brotli")
    if "br" not in codecs.ACCEPT_ENCODING:
        pytest.skip("this brotli cannot bound its output; `br` is refused outright")
    compressor, zeros = brotli.Compressor(quality=1), bytes(16 << 20)
    parts = [compressor.process(zeros) for _ in range(16)] + [compressor.finish()]  # 256 MiB of zeros
    started = time.monotonic()
    response = ask(gateway, provider, "brotli-bomb", Answer("br", b"".join(parts)))
    assert_refused_as_too_large(response)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(("encoding", "body"), [
    ("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + MARKER.encode() * 10),
    ("deflate", b"\x78\xda" + MARKER.encode() * 10),
])
def test_a_corrupt_encoded_answer_is_refused_without_quoting_it(gateway, provider, caplog, encoding, body):
    response = ask(gateway, provider, "corrupt", Answer(encoding, body))
    assert response.status_code == 502, response.text
    assert response.json()["error_code"] == "provider_bad_response"
    assert f"its {encoding} data is corrupt" in response.json()["message"]
    assert MARKER not in response.text and MARKER not in caplog.text


def test_the_gateway_offers_only_the_encodings_it_can_bound(gateway, provider):
    provider.requests.clear()
    response = ask(gateway, provider, "normal", Answer("gzip", gzip.compress(answer())))
    assert response.status_code == 200, response.text
    [request] = provider.requests
    offered = [coding.strip() for coding in request["accept-encoding"].split(",")]
    assert offered[:2] == ["gzip", "deflate"]
    assert set(offered) <= {"gzip", "deflate", "br"}  # never zstd, which cannot be bounded here


# --- decoder, fed byte by byte ---------------------------------------------------------------


@pytest.mark.parametrize(("codings", "encode"), [
    (["gzip"], gzip.compress),
    (["deflate"], zlib.compress),
    (["deflate"], raw_deflate),
    (["gzip", "deflate"], lambda data: zlib.compress(gzip.compress(data))),
])
@pytest.mark.parametrize("step", [1, 2, 3, 1000, 1 << 20])
def test_the_decoder_is_exact_whatever_the_chunking(codings, encode, step):
    data = os.urandom(100_000) + b"a" * 300_000 + os.urandom(1000)
    encoded = encode(data)
    body = codecs.BoundedBody(codings, LIMIT)
    for i in range(0, len(encoded), step):
        body.feed(encoded[i:i + step])
    assert body.finish() == data


@pytest.mark.parametrize("step", [1, 13, 1 << 20])
def test_the_brotli_decoder_is_exact_whatever_the_chunking(step):
    brotli = pytest.importorskip("brotli")
    if "br" not in codecs.ACCEPT_ENCODING:
        pytest.skip("this brotli cannot bound its output; `br` is refused outright")
    data = os.urandom(100_000) + b"a" * 300_000 + os.urandom(1000)
    encoded = brotli.compress(data, quality=5)
    body = codecs.BoundedBody(["br"], LIMIT)
    for i in range(0, len(encoded), step):
        body.feed(encoded[i:i + step])
    assert body.finish() == data


@pytest.mark.parametrize("codings", [["gzip"], ["gzip", "gzip"], ["deflate", "gzip"]])
def test_incompressible_data_of_exactly_the_limit_is_read_whatever_its_encoding_adds(codings):
    """Raw bytes and inner layers are bounded a little above the limit: deflate's overhead on
    data it cannot compress must not get an answer within the limit refused."""
    data = os.urandom(LIMIT)
    encoded = data
    for coding in codings:
        encoded = gzip.compress(encoded, 9) if coding == "gzip" else zlib.compress(encoded, 9)
    assert len(encoded) > LIMIT
    body = codecs.BoundedBody(codings, LIMIT)
    body.feed(encoded)
    assert body.finish() == data


def test_the_decoder_fed_a_whole_bomb_at_once_allocates_little_more_than_the_limit():
    """httpx's own decoder turns one 1 MiB chunk of this bomb into 1 GiB in one call."""
    bomb = gzip_bomb()
    body = codecs.BoundedBody(["gzip"], LIMIT)
    tracemalloc.start()
    try:
        with pytest.raises(codecs.BodyTooLarge):
            body.feed(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * LIMIT, f"{peak} bytes allocated"


# --- memory, gateway in its own process ------------------------------------------------------

HARNESS = """\
import socket, sys, uvicorn
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config("gateway.http.serve:app_from_environment", factory=True, log_level="warning")
uvicorn.Server(config).run(sockets=[sock])
"""


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1))


@pytest.fixture
def gateway_process(provider, tmp_path) -> Iterator[tuple[str, int]]:
    config = write_gateway(tmp_path, provider)
    env = {**os.environ, "GATEWAY_CONFIG": str(config), "GATEWAY_LOG_LEVEL": "WARNING"}
    with (tmp_path / "gateway.log").open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", HARNESS], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


async def _fire(url: str, names: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(*(
            client.post("/p/gift_card/balance", json={"identifier": {"number": name}}) for name in names))


def test_ten_concurrent_bombs_barely_raise_the_gateways_peak_memory(gateway_process, provider):
    url, pid = gateway_process
    provider.answers["/warm"] = Answer("gzip", gzip.compress(answer(LIMIT - 1)))
    provider.answers["/bomb"] = Answer("gzip", gzip_bomb())
    # Warm up with ten concurrent answers just under the limit: the pool, the code paths, the
    # allocator's arenas for bodies of the limit's size are all in place before measuring.
    for response in asyncio.run(_fire(url, ["warm"] * 10)):
        assert response.status_code == 200, response.text
    before = peak_rss_kib(pid)
    responses = asyncio.run(_fire(url, ["bomb"] * 10))
    after = peak_rss_kib(pid)
    for response in responses:
        assert_refused_as_too_large(response)
    growth_mib = (after - before) / 1024
    print(f"gateway peak RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after ten bombs "
          f"(+{growth_mib:.1f} MiB)")
    assert growth_mib < 50, f"ten bombs raised the gateway's peak RSS by {growth_mib:.0f} MiB"
