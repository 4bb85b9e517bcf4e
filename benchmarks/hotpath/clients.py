"""What carrying one provider call costs, per HTTP client: CPU per request in this process.

    .venv/bin/python benchmarks/hotpath/clients.py [--requests 3000] [--rounds 5]

Each client sends the benchmark's balance lookup (a small JSON POST) to the fake provider (a
separate uvicorn process), one request at a time on a kept-alive connection, and reads the JSON
answer; rounds are interleaved and the medians printed with the ratio to aiohttp's
``ClientSession``. Candidates: the gateway's own ``wire.Pool`` (what the common request goes
through), aiohttp, httpx with its default transport, and, when installed, pyreqwest and aiosonic
(``pip install pyreqwest aiosonic``; not dependencies of the gateway). CPU time includes every
thread of the process (pyreqwest runs its I/O on Rust threads).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Awaitable, Callable

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inprocess import _free_port, _start_provider  # noqa: E402

BODY = msgspec.json.encode({"number": "6006491111111111", "pin": "480163"})
HEADERS = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate", "User-Agent": "bench/1",
           "Content-Type": "application/json"}
Client = Callable[[int, int], Awaitable[float]]


async def _timed(n: int, one: Callable[[], Awaitable[bytes]]) -> float:
    msgspec.json.decode(await one())  # connection opened, caches warm
    start = time.process_time()
    for _ in range(n):
        msgspec.json.decode(await one())
    return (time.process_time() - start) / n


async def gateway_wire(port: int, n: int) -> float:
    from gateway.runtime.upstream import wire
    from gateway.runtime.upstream.transport import shared_ssl_context

    pool = wire.Pool("http", "127.0.0.1", port, shared_ssl_context)
    headers = [("Host", f"127.0.0.1:{port}"), *HEADERS.items()]

    async def one() -> bytes:
        return (await pool.request("POST", "/v1/cards/lookup", headers, BODY, 10.0, 1 << 20))[2]

    try:
        return await _timed(n, one)
    finally:
        pool.close()


async def aiohttp_session(port: int, n: int) -> float:
    import aiohttp
    from yarl import URL

    session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=10))
    url = URL(f"http://127.0.0.1:{port}/v1/cards/lookup", encoded=True)

    async def one() -> bytes:
        async with session.post(url, data=BODY, headers=HEADERS, allow_redirects=False) as response:
            return await response.read()

    try:
        return await _timed(n, one)
    finally:
        await session.close()


async def httpx_default(port: int, n: int) -> float:
    import httpx

    client = httpx.AsyncClient(timeout=10)
    url = f"http://127.0.0.1:{port}/v1/cards/lookup"

    async def one() -> bytes:
        return (await client.post(url, content=BODY, headers=HEADERS)).content

    try:
        return await _timed(n, one)
    finally:
        await client.aclose()


async def pyreqwest_client(port: int, n: int) -> float:
    from pyreqwest.client import ClientBuilder

    client = (ClientBuilder().follow_redirects(False).gzip(False).brotli(False).zstd(False).deflate(False)
              .timeout(timedelta(seconds=10)).build())
    url = f"http://127.0.0.1:{port}/v1/cards/lookup"

    async def one() -> bytes:
        response = await client.post(url).headers(HEADERS).body_bytes(BODY).build().send()
        return bytes(await response.bytes())

    try:
        return await _timed(n, one)
    finally:
        await client.close()


async def aiosonic_client(port: int, n: int) -> float:
    import aiosonic

    client = aiosonic.HTTPClient()
    url = f"http://127.0.0.1:{port}/v1/cards/lookup"

    async def one() -> bytes:
        return await (await client.post(url, data=BODY, headers=HEADERS)).content()

    return await _timed(n, one)


CANDIDATES: dict[str, tuple[str | None, Client]] = {
    "gateway wire.Pool": (None, gateway_wire),
    "aiohttp ClientSession": ("aiohttp", aiohttp_session),
    "httpx default": ("httpx", httpx_default),
    "pyreqwest": ("pyreqwest", pyreqwest_client),
    "aiosonic": ("aiosonic", aiosonic_client),
}


async def main(args: argparse.Namespace) -> None:
    import importlib.util

    port = _free_port()
    provider = _start_provider(port)
    try:
        present = {name: fn for name, (module, fn) in CANDIDATES.items()
                   if module is None or importlib.util.find_spec(module) is not None}
        results: dict[str, list[float]] = {name: [] for name in present}
        for _ in range(args.rounds):
            for name, fn in present.items():
                results[name].append(await fn(port, args.requests))
    finally:
        provider.terminate()
        provider.wait()
    base = statistics.median(results["aiohttp ClientSession"])
    print(f"CPU µs per provider call (median of {args.rounds} interleaved rounds of {args.requests}, "
          "one connection, kept alive)\n")
    print("| client | µs per call | ÷ aiohttp |")
    print("|---|---|---|")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e6:.0f} | {median / base:.2f} |")
    missing = [name for name in CANDIDATES if name not in present]
    if missing:
        print(f"\nnot installed, not measured: {', '.join(missing)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # the gateway's own loop when installed (gateway serve's default)
        asyncio.run(main(arguments))
    else:
        uvloop.run(main(arguments))
