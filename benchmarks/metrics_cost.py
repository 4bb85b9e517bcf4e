"""What metrics cost: balance webhooks per second with metrics on and with ``--no-metrics``.

    python benchmarks/metrics_cost.py [--rounds 5] [--seconds 5] [--connections 16] [--workers 1]

Starts the sandbox provider and two ``gateway serve`` processes on the same configuration, one
with metrics and one with ``--no-metrics``, then drives each with wrk (POST balance, keep-alive)
in interleaved rounds, alternating which goes first, so a noisy neighbour hits both alike.
Prints each round and the median ratio (on / off). Both gateways and the provider share the
machine's cores with wrk: the ratio is the number to read, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
BODY = {"identifier": {"number": "6006491111111111", "pin": "480163"}}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited")
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    procs: list[subprocess.Popen] = []
    folder = Path(tempfile.mkdtemp(prefix="metrics-cost-"))
    try:
        sim_port = _port()
        procs.append(subprocess.Popen([sys.executable, "-m", "simulators.sandbox", "--port", str(sim_port)],
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(f"http://127.0.0.1:{sim_port}/_sim/health", procs[-1])
        config = folder / "gateway.yaml"
        config.write_text(yaml.safe_dump({"providers": {"sandbox": {
            "mapping": str(ROOT / "mappings" / "sandbox.yaml"), "vars": {"base_url": f"http://127.0.0.1:{sim_port}"},
            "secrets": {"api_key": {"file": str(ROOT / "simulators" / "sandbox" / "sandbox.key")}},
            "inbound": "none"}}}))
        targets = {}
        for name, extra in (("metrics", []), ("no-metrics", ["--no-metrics"])):
            port = _port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port),
                 "--no-companions", "--log-level", "warning", "--workers", str(args.workers), *extra],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            _wait(f"http://127.0.0.1:{port}/livez", procs[-1])
            url = f"http://127.0.0.1:{port}/sandbox/gift_card/balance"
            answer = httpx.post(url, json=BODY)
            assert answer.status_code == 200, answer.text  # a benchmark of error answers is worthless
            targets[name] = url
        script = folder / "post.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(json.dumps(BODY))}\n")
        rates: dict[str, list[float]] = {name: [] for name in targets}
        for round_ in range(args.rounds):
            order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
            for name in order:
                out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "-s", str(script),
                                      targets[name]], capture_output=True, text=True, check=True).stdout
                if "Non-2xx" in out:
                    raise SystemExit(f"{name}: non-2xx answers:\n{out}")
                rates[name].append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
            print(f"round {round_ + 1}: " + ", ".join(f"{n} {rates[n][-1]:.0f} req/s" for n in targets), flush=True)
        on, off = statistics.median(rates["metrics"]), statistics.median(rates["no-metrics"])
        ratios = [a / b for a, b in zip(rates["metrics"], rates["no-metrics"])]
        print(f"median: metrics {on:.0f} req/s, no-metrics {off:.0f} req/s; ratio on/off {on / off:.3f} "
              f"(per round: {', '.join(f'{r:.3f}' for r in ratios)})")
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
