"""Issue-webhook throughput per idempotency store, next to balance (which never touches a store).

    python benchmarks/idempotency_bench.py [--requests 1000] [--rounds 3] [--concurrency 16] [--stores sqlite,redis,postgres]

Starts the sandbox provider and, for each store, one `gateway serve` process; drives it over
loopback with httpx and prints requests per second for balance and for issue (every issue with
a fresh idempotence_key: claim, provider call, sealed store), and their ratio. Both columns are
measured in the same run against the same processes, so the ratio survives a noisy machine.
Target from the idempotency issue: issue with SQLite >= 0.7x balance.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
KEY = base64.b64encode(os.urandom(32)).decode()
STORES = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'idem.sqlite3'}",
    "redis": lambda tmp: "redis://127.0.0.1:6379/14",
    "postgres": lambda tmp: "postgresql://postgres@127.0.0.1:5432/test",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def drive(url: str, bodies, n: int, concurrency: int) -> float:
    queue = iter(range(n))
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            for i in queue:
                response = await client.post(url, json=bodies(i))
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    sandbox = subprocess.Popen([sys.executable, "-m", "simulators.sandbox", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    sandbox_url = re.search(r"http://[\d.]+:\d+", sandbox.stdout.readline().decode()).group(0)  # type: ignore[union-attr]
    rows = []
    try:
        for kind in args.stores.split(","):
            config = tmp / f"{kind}.yaml"
            config.write_text(yaml.safe_dump({
                "idempotency": {"store": STORES[kind](tmp), "encryption_keys": [{"id": "b", "key": {"env": "BENCH_KEY"}}]},
                "providers": {"sandbox": {
                    "mapping": str(ROOT / "mappings" / "sandbox.yaml"), "vars": {"base_url": sandbox_url},
                    "secrets": {"api_key": {"file": str(ROOT / "simulators" / "sandbox" / "sandbox.key")}},
                    "inbound": "none"}}}))
            port = free_port()
            gateway = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                        "--port", str(port), "--log-level", "warning", "--no-companions"],
                                       cwd=ROOT, env={**os.environ, "BENCH_KEY": KEY},
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}"
            try:
                wait(base + "/health", gateway)
                balance_body = {"identifier": {"number": "6006491111111111", "pin": "480163"}}
                run = uuid.uuid4().hex[:8]

                def issue_body(i: int, run: str = run) -> dict:
                    return {"amount": {"value": 10, "currency": "USD"}, "customer": {"id": "bench"},
                            "idempotence_key": f"bench-{run}-{i}"}

                def balance_of(i: int, body: dict = balance_body) -> dict:
                    return body

                asyncio.run(drive(base + "/sandbox/gift_card/balance", balance_of, 200, args.concurrency))
                # Balance and issue alternate, round after round, so a noisy neighbour hits both;
                # the ratio reported is the median of the rounds' ratios.
                rounds = []
                for r in range(args.rounds):
                    def fresh(i: int, r: int = r) -> dict:
                        return issue_body(i + r * args.requests)

                    balance = asyncio.run(drive(base + "/sandbox/gift_card/balance", balance_of,
                                                args.requests, args.concurrency))
                    issue = asyncio.run(drive(base + "/sandbox/gift_card/issue", fresh, args.requests, args.concurrency))
                    rounds.append((balance, issue))
                replay = asyncio.run(drive(base + "/sandbox/gift_card/issue", issue_body, args.requests, args.concurrency))
                ratios = sorted(i / b for b, i in rounds)
                rows.append((kind, max(b for b, _ in rounds), max(i for _, i in rounds), ratios[len(ratios) // 2], replay))
            finally:
                gateway.terminate()
                gateway.wait(20)
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    print(f"{'store':<10}{'balance req/s':>15}{'issue req/s':>13}{'issue/balance':>15}{'replay req/s':>14}")
    for kind, balance, issue, ratio, replay in rows:
        print(f"{kind:<10}{balance:>15.0f}{issue:>13.0f}{ratio:>15.2f}{replay:>14.0f}")
    print(f"\n{args.rounds} rounds of {args.requests} balance then {args.requests} issue requests, {args.concurrency} "
          f"concurrent, one gateway process, cores: {os.cpu_count()}; req/s: the best round; issue/balance: the median "
          "of the rounds' ratios. issue = claim + provider call + sealed store; replay = the same keys again.")
    sqlite = [r for r in rows if r[0] == "sqlite"]
    if sqlite:
        ratio = sqlite[0][3]
        print(f"target: issue with SQLite >= 0.7x balance -> {ratio:.2f}x, {'met' if ratio >= 0.7 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
