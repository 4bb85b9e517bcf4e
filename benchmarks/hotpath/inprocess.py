"""The webhook's own cost, without the HTTP server and the load generator: CPU per request of the
gateway's ASGI app and of the hand-written Litestar + aiohttp adapter, called directly in one
process, interleaved, against the same fake provider (a separate uvicorn process).

    .venv/bin/python benchmarks/hotpath/inprocess.py [--requests 4000] [--rounds 5] [--concurrency 1,32]
    .venv/bin/python benchmarks/hotpath/inprocess.py --profile gateway   # cProfile, top entries

wrk and uvicorn cost the same for both and take most of a shared machine's noise; what is left is
what the gateway does per webhook that the adapter does not. The ratio printed is adapter CPU /
gateway CPU per request (1.0: the same cost). The full benchmark (run.py) stays the measure of
record; this is the quick loop while changing the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

BODY = b'{"identifier":{"number":"6006491111111111","pin":"480163"}}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_provider(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.hotpath.fake_provider:app", "--http", "httptools",
         "--loop", "uvloop", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the fake provider did not start")


def _gateway_app(port: int, tmp: Path, *, log: bool, metrics_on: bool):  # type: ignore[no-untyped-def]
    from gateway.compile.gateway_file import load
    from gateway.http.app import create_app
    from gateway.observe import logformat, metrics

    for name in ("mapping.yaml", "three_step.yaml"):
        (tmp / name).write_text((HERE / name).read_text())
    text = (HERE / "gateway.yaml").read_text().replace("http://127.0.0.1:18081", f"http://127.0.0.1:{port}")
    (tmp / "gateway.yaml").write_text(text)
    plan, diagnostics = load(tmp / "gateway.yaml")
    assert plan is not None, diagnostics
    logformat.configure("INFO" if log else "WARNING", "json")
    metrics.configure(metrics_on)
    return create_app(plan)


def _adapter_app(port: int):  # type: ignore[no-untyped-def]
    os.environ["PROVIDER_URL"] = f"http://127.0.0.1:{port}"
    from benchmarks.hotpath.adapters import litestar_aiohttp

    litestar_aiohttp.PROVIDER_URL = os.environ["PROVIDER_URL"]
    return litestar_aiohttp.app


class _Lifespan:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict] = asyncio.Queue()

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        message = await self.outbox.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        await self.task


def _scope(path: str) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(BODY)).encode()), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }


async def _one(app, path: str) -> int:  # type: ignore[no-untyped-def]
    sent = False
    status = 0

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path), receive, send)
    return status


async def _batch(app, path: str, requests: int, concurrency: int) -> float:  # type: ignore[no-untyped-def]
    """CPU seconds per request for ``requests`` webhooks, ``concurrency`` at a time."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status = await _one(app, path)
            if status != 200:
                raise SystemExit(f"{path}: status {status}")

    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - start) / requests


async def main(args: argparse.Namespace) -> None:
    port = _free_port()
    provider = _start_provider(port)
    stderr = sys.stderr
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gateway = _gateway_app(port, Path(tmp), log=not args.no_log, metrics_on=not args.no_metrics)
            adapter = _adapter_app(port)
            apps = {"gateway": (gateway, "/bench/gift_card/balance"), "litestar-aiohttp": (adapter, "/bench/gift_card/balance")}
            spans = {name: _Lifespan(app) for name, (app, _) in apps.items()}
            for span in spans.values():
                await span.start()
            from gateway.runtime import heap

            heap.settle()  # as gateway serve does once started (the adapter gets it too: same process)
            # The adapter's Litestar configures logging at startup: the gateway's comes back, as in
            # its own process, and its lines go where a service's would: a file descriptor.
            from gateway.observe import logformat

            logformat.configure("WARNING" if args.no_log else "INFO", "json")
            devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(devnull)
            try:
                for name, (app, path) in apps.items():  # warm up
                    await _batch(app, path, 300, 4)
                if args.profile:
                    import cProfile
                    import pstats

                    app, path = apps[args.profile]
                    prof = cProfile.Profile()
                    prof.enable()
                    await _batch(app, path, args.requests, args.concurrency[-1])
                    prof.disable()
                    out = io.StringIO()
                    stats = pstats.Stats(prof, stream=out).sort_stats(args.sort)
                    stats.print_stats(args.lines)
                    if args.callers:
                        stats.print_callers(args.callers)
                    print(out.getvalue())
                    return
                results: dict[tuple[str, int], list[float]] = {}
                for _ in range(args.rounds):
                    for c in args.concurrency:
                        for name, (app, path) in apps.items():
                            results.setdefault((name, c), []).append(await _batch(app, path, args.requests, c))
            finally:
                for span in spans.values():
                    await span.stop()
    finally:
        sys.stderr = stderr
        provider.terminate()
        provider.wait()
    print(f"CPU µs per webhook in this process (median of {args.rounds} interleaved rounds of {args.requests}; "
          "the fake provider is another process)\n")
    print("| target | " + " | ".join(f"c={c} µs" for c in args.concurrency) + " | "
          + " | ".join(f"adapter ÷ gateway c={c}" for c in args.concurrency) + " |")
    print("|---|" + "---|" * (2 * len(args.concurrency)))
    for name in apps:
        cells = [f"{statistics.median(results[name, c]) * 1e6:.0f}" for c in args.concurrency]
        ratios = [f"{statistics.median(results['litestar-aiohttp', c]) / statistics.median(results[name, c]):.2f}"
                  for c in args.concurrency]
        print(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 32])
    parser.add_argument("--no-log", action="store_true")
    parser.add_argument("--no-metrics", action="store_true")
    parser.add_argument("--profile", choices=["gateway", "litestar-aiohttp"])
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--lines", type=int, default=45)
    parser.add_argument("--callers", help="also print who calls the functions matching this")
    arguments = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(arguments))
