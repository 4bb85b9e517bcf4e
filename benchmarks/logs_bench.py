"""What request ids and the JSON log line cost: balance webhooks per second, with and without.

    python benchmarks/logs_bench.py [--requests 1500] [--rounds 5]

"with": the app as `gateway serve` runs it (X-Request-ID kept/made and echoed, the request scope,
every line through the JSON formatter with ts, pid and the request's fields). "without": the same
app with the request-id wrapper left out and the formatter reduced to what it was before
(the message as it is, redacted). Both write their lines to /dev/null through a real handler.
The provider answers in-process (httpx.MockTransport), so the gateway's own work is all that is
measured: the most pessimistic ratio. Throughput is per CPU second of this process (the client,
the app and the provider stand-in all run in it), not per wall-clock second: on a shared machine
other processes' load swung wall-clock rounds by 2x, CPU time by a few percent. Rounds are
interleaved (with, without, with, ...) so what drift remains hits both alike; medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar.testing import AsyncTestClient  # noqa: E402

from gateway import logs  # noqa: E402
from gateway.compile.gateway_file import load  # noqa: E402
from gateway.http import app as app_module  # noqa: E402
from gateway.observe import logformat, requestid  # noqa: E402

BODY = {"identifier": {"number": "6006491111111111", "pin": "480163"}}
ANSWER = {"result": "ok", "card": {"balance": {"amount_minor": 5000, "currency": "USD"}}}


class _Before(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return logs.redact(record.getMessage())


def _plan():
    folder = Path(tempfile.mkdtemp())
    (folder / "gateway.yaml").write_text(yaml.safe_dump({"providers": {"sandbox": {
        "mapping": str(ROOT / "mappings" / "sandbox.yaml"), "vars": {"base_url": "http://sandbox.test"},
        "secrets": {"api_key": {"file": str(ROOT / "simulators" / "sandbox" / "sandbox.key")}}, "inbound": "none"}}}))
    plan, diagnostics = load(folder / "gateway.yaml")
    assert plan is not None, diagnostics
    return plan


def _app(plan, with_ids: bool):
    saved = requestid.wrap
    if not with_ids:
        app_module.requestid.wrap = lambda handler: handler  # type: ignore[assignment]
    try:
        return app_module.create_app(plan, transport_factory=lambda _p: httpx.MockTransport(
            lambda _r: httpx.Response(200, json=ANSWER)))
    finally:
        app_module.requestid.wrap = saved  # type: ignore[assignment]


async def _round(app, formatter: logging.Formatter, requests: int) -> float:
    handler = logging.StreamHandler(open(os.devnull, "w"))
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    async with AsyncTestClient(app) as client:
        for _ in range(50):  # warm up
            await client.post("/sandbox/gift_card/balance", json=BODY)
        started = time.process_time()
        for _ in range(requests):
            response = await client.post("/sandbox/gift_card/balance", json=BODY)
            assert response.status_code == 200
        return requests / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    plan = _plan()
    results: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.rounds):
        for name in ("with", "without"):
            app = _app(plan, with_ids=name == "with")
            formatter = logformat.JsonFormatter() if name == "with" else _Before()
            results[name].append(asyncio.run(_round(app, formatter, args.requests)))
            print(f"{name:8} {results[name][-1]:8.0f} req per CPU s", flush=True)
    with_ids, without = statistics.median(results["with"]), statistics.median(results["without"])
    print(f"median: with {with_ids:.0f}, without {without:.0f} requests per CPU second; "
          f"cost {100 * (1 - with_ids / without):.1f}% (ratio {with_ids / without:.3f})")


if __name__ == "__main__":
    main()
