"""Hot-path benchmark: the gateway next to the same balance webhook written by hand.

    python benchmarks/hotpath/run.py                 # full run: 3 interleaved rounds of 5 s per cell
    python benchmarks/hotpath/run.py --quick         # smoke: 1 round of 1 s, small extras
    python benchmarks/hotpath/run.py --check-only    # start everything, check every answer, stop

One run starts, each in its own process (one uvicorn worker each, httptools, the same event loop
as the gateway):

- ``provider``: the fake gift card provider (fake_provider.py, raw ASGI, one fixed JSON answer);
  driven alone, it is the floor;
- ``gateway``: ``gateway serve`` on gateway.yaml + mapping.yaml of this folder (inbound auth
  none, SQLite idempotency in a temporary folder), ``--workers N`` each;
- ``litestar-aiohttp``, ``litestar-httpx``, ``fastapi-httpx``: the balance webhook written by
  hand (adapters/), as an integrator would;
- and, on the gateway: ``gateway-issue`` (issue with a new idempotence_key per request: SQLite
  claim, provider call, sealed store) and ``gateway-3step`` (balance in three provider calls).

It checks that every target answers one request with the expected body (else it stops: a
benchmark of error answers is worthless), then drives them with wrk in interleaved rounds
(every round visits every target at every concurrency, in a rotating order, so a noisy
neighbour hits all of them alike) and prints the medians as markdown tables. Then: RSS of the
gateway across --rss-requests requests (twice), and the startup time of ``gateway serve`` and of
``gateway lint`` with --startup-mappings generated mappings, installed as a user installs it,
beside the hand-written adapter's start (startup.py, which also runs alone).

Every process it starts is stopped on exit, on Ctrl-C, on SIGTERM and on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.hotpath import fake_provider  # noqa: E402

BASELINE = "litestar-aiohttp"
ADAPTERS = {
    "litestar-aiohttp": "benchmarks.hotpath.adapters.litestar_aiohttp:app",
    "litestar-httpx": "benchmarks.hotpath.adapters.litestar_httpx:app",
    "fastapi-httpx": "benchmarks.hotpath.adapters.fastapi_httpx:app",
}
VARIANTS = ("gateway-issue", "gateway-3step")
# The same balance webhook on gateways with parts of the observability switched off, each its own
# process: what metrics, the webhook's log line and request ids cost (the operations issue asks
# for metrics and request ids under 5% of throughput).
OBSERVABILITY = {
    "gateway-no-metrics": ("gateway serve --no-metrics", ["--no-metrics"], False),
    "gateway-no-log": ("gateway serve --log-level warning: no line per webhook", [], False),
    "gateway-no-ids": ("no request ids (bare_gateway.py; metrics and the log line on)", [], True),
    "gateway-no-metrics-ids": ("--no-metrics and no request ids (bare_gateway.py; the log line on)", ["--no-metrics"], True),
    "gateway-bare": ("--no-metrics, --log-level warning and no request ids (bare_gateway.py)", ["--no-metrics"], True),
}
ALL_TARGETS = ("provider", "gateway", *ADAPTERS, *VARIANTS, *OBSERVABILITY)

BALANCE_BODY = {"identifier": {"number": fake_provider.CARD_NUMBER, "pin": fake_provider.CARD_PIN},
                "metadata": {"store_id": "store-1"}}
PROVIDER_BODY = {"number": fake_provider.CARD_NUMBER, "pin": fake_provider.CARD_PIN}
EXPECTED_BALANCE = {"value": fake_provider.BALANCE_MINOR / 100, "currency": fake_provider.CURRENCY}
RSS_CONNECTIONS = 4  # near the gateway's best throughput, so 100k requests take minutes, not hours
KEEP_ALIVE = 5.0  # gateway serve's default --keep-alive-timeout, given to every uvicorn here


class Abort(Exception):
    """The benchmark cannot go on; the message says why."""


# --- processes ---------------------------------------------------------------------------------


class Processes:
    """Every process the benchmark starts, each in its own session (process group), so stopping
    it stops its children too (uvicorn workers)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path = ROOT) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.running[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 8192))
            text = f.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, name: str, grace: float = 25.0) -> None:
        proc = self.running.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        # The group may outlive its leader (a worker that did not stop): make sure it is gone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(procs: Processes, name: str, port: int, path: str | None = None, timeout: float = 120.0) -> float:
    """Seconds until the process accepts connections on ``port`` (and ``path`` answers 200)."""
    proc = procs.running[name]
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise Abort(f"{name} exited with status {proc.returncode} before it was ready:\n{procs.log_tail(name)}")
        try:
            if path is None:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return time.perf_counter() - started
            elif httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.02)
    raise Abort(f"{name} was not ready after {timeout:g}s:\n{procs.log_tail(name)}")


LOOP: str | None = None  # --loop


def event_loop() -> str:
    """The loop every target runs on (``gateway serve --loop``): uvloop, the gateway's default,
    when it is installed, unless --loop says otherwise."""
    return LOOP or ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")


def uvicorn_argv(app: str, port: int) -> list[str]:
    """The same server settings as ``gateway serve``: httptools, the same loop, no access log,
    the same keep-alive timeout, one worker."""
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--http", "httptools",
            "--loop", event_loop(), "--no-access-log", "--log-level", "warning", "--timeout-keep-alive", f"{KEEP_ALIVE:g}",
            "--workers", "1"]


def write_gateway_config(folder: Path, provider_url: str, *, name: str = "gateway.yaml") -> Path:
    """This folder's gateway.yaml pointed at the fake provider, its store and key in ``folder``."""
    config = yaml.safe_load((HERE / "gateway.yaml").read_text())
    for entry in config["providers"].values():
        entry["mapping"] = str(HERE / entry["mapping"])
        entry["vars"]["base_url"] = provider_url
    config["idempotency"]["store"] = f"sqlite:///{folder / 'idempotency.sqlite3'}"
    config["idempotency"]["key_file"] = str(folder / "idempotency.key")
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- targets -----------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    script: str  # "post" (fixed body) or "issue" (a new idempotence_key per request)
    body: dict[str, Any] | None
    check: Callable[[int, bytes], str | None]  # None when the answer is the expected one
    body_file: Path | None = None
    pid: int | None = None  # the process whose CPU time is charged to it (with its children)
    results: dict[int, list[dict[str, float]]] = field(default_factory=dict)  # connections -> rounds


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def expect_balance(status: int, content: bytes) -> str | None:
    # Compared as JSON values: 50.00 (the gateway, a Decimal) equals 50.0 (an adapter, a float).
    if status == 200 and _json(content) == EXPECTED_BALANCE:
        return None
    return f"expected 200 {json.dumps(EXPECTED_BALANCE)}, got {status} {content[:300]!r}"


def expect_provider(status: int, content: bytes) -> str | None:
    return None if status == 200 and content == fake_provider.BODY else f"got {status} {content[:300]!r}"


def expect_issue(status: int, content: bytes) -> str | None:
    body = _json(content)
    ok = (status == 200 and isinstance(body, dict)
          and body.get("identifier") == {"number": fake_provider.CARD_NUMBER, "pin": fake_provider.CARD_PIN}
          and body.get("amount") == {"value": 10, "currency": "USD"}
          and str(body.get("idempotence_key", "")).startswith("check-"))
    return None if ok else f"expected 200 with the issued card and the key, got {status} {content[:300]!r}"


def check_answers(targets: list[Target]) -> None:
    """One request per target; any unexpected answer stops the benchmark."""
    failures = []
    with httpx.Client(timeout=15) as client:
        for t in targets:
            body = t.body if t.script == "post" else {
                "amount": {"value": 10, "currency": "USD"}, "customer": {"id": "bench"},
                "idempotence_key": f"check-{uuid.uuid4().hex}"}
            try:
                response = client.post(t.url, json=body)
                problem = t.check(response.status_code, response.content)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            print(f"check {t.name:<18} {'ok' if problem is None else 'FAILED: ' + problem}", flush=True)
            if problem is not None:
                failures.append(t.name)
    if failures:
        raise Abort(f"wrong answers from {', '.join(failures)}: nothing measured")


# --- wrk ---------------------------------------------------------------------------------------


def wrk(procs: Processes, target: Target, connections: int, duration: float, prefix: str) -> dict[str, float]:
    threads = 1 if connections == 1 else 2
    args = [str(target.body_file)] if target.script == "post" else [prefix]
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
            "-s", str(HERE / f"{target.script}.lua"), target.url, "--", *args]
    cpu_before = cpu_seconds(target.pid) if target.pid else 0.0
    proc = procs.start("wrk", argv)
    try:
        proc.wait(duration + 60)
    finally:
        procs.stop("wrk", grace=2)
    cpu = (cpu_seconds(target.pid) - cpu_before) if target.pid else float("nan")
    out = (procs.logs / "wrk.log").read_text(errors="replace")
    match = re.search(r"^WRK_RESULT (\{.*\})$", out, re.M)
    if proc.returncode != 0 or match is None:
        raise Abort(f"wrk failed against {target.name} (status {proc.returncode}):\n{out[-2000:]}")
    r = json.loads(match.group(1))
    seconds = r["duration_us"] / 1e6
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {"rps": r["requests"] / seconds, "p50": r["p50_us"] / 1000, "p99": r["p99_us"] / 1000,
            "requests": r["requests"], "errors": errors, "status_errors": r["status"],
            "cpu_ms": cpu * 1000 / r["requests"] if r["requests"] else float("nan")}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- measurements ------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident memory of the gateway: the process and its children (the workers, if several)."""
    try:
        import psutil

        p = psutil.Process(pid)
        return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)])
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the workers, if several)."""
    try:
        import psutil

        p = psutil.Process(pid)
        return sum(sum(q.cpu_times()[:2]) for q in [p, *p.children(recursive=True)])
    except ImportError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive_requests(procs: Processes, target: Target, total: int, connections: int, prefix: str,
                   max_seconds: float) -> tuple[int, float]:
    """``total`` requests or more (wrk runs in 10 s slices until there are), unless ``max_seconds``
    pass first; the number done and their req/s."""
    done, seconds = 0, 0.0
    while done < total and seconds < max_seconds:
        r = wrk(procs, target, connections, 10, prefix)
        if r["errors"]:
            raise Abort(f"{target.name}: {r['errors']:.0f} errors while driving requests for the RSS measure")
        done += int(r["requests"])
        seconds += r["requests"] / r["rps"]
    return done, done / seconds


def generate_mappings(folder: Path, count: int, provider_url: str) -> Path:
    """``count`` providers, each with its own mapping file (a renamed copy of mapping.yaml)."""
    mappings = folder / "mappings"
    mappings.mkdir(parents=True)
    source = (HERE / "mapping.yaml").read_text()
    providers = {}
    for i in range(count):
        name = f"p{i:04d}"
        (mappings / f"{name}.yaml").write_text(source.replace(
            "description: Benchmark provider (benchmarks/hotpath)", f"description: Generated provider {name}"))
        providers[name] = {"mapping": f"mappings/{name}.yaml", "vars": {"base_url": provider_url}, "inbound": "none"}
    config = folder / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "providers": providers,
        "idempotency": {"store": f"sqlite:///{folder / 'idempotency.sqlite3'}", "key_file": str(folder / "idempotency.key")},
    }, sort_keys=False))
    return config


def gateway_argv(config: Path, port: int, workers: int, log_level: str, *, extra: list[str] | None = None,
                 bare: bool = False) -> list[str]:
    entry = [str(HERE / "bare_gateway.py")] if bare else ["-m", "gateway.cli"]
    return [sys.executable, *entry, "serve", "--config", str(config), "--port", str(port),
            "--workers", str(workers), "--log-level", log_level, "--no-companions", "--loop", event_loop(),
            "--keep-alive-timeout", f"{KEEP_ALIVE:g}", *(extra or [])]


# --- output ------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # nan
        return "n/a"
    return f"{value:,.{digits}f}"


def main_table(targets: list[Target], conns: list[int], baseline: Target | None, floor: Target | None) -> str:
    head = (["target"] + [f"req/s c={c}" for c in conns] + [f"p50 ms c={c}" for c in conns]
            + [f"p99 ms c={c}" for c in conns] + [f"x {BASELINE} c={c}" for c in conns])
    if 1 in conns:
        head.append("p50 added over provider, c=1 (ms)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in targets:
        row = [t.name]
        row += [fmt(median([r["rps"] for r in t.results[c]])) for c in conns]
        row += [fmt(median([r["p50"] for r in t.results[c]]), 2) for c in conns]
        row += [fmt(median([r["p99"] for r in t.results[c]]), 2) for c in conns]
        for c in conns:
            if baseline is None:
                row.append("n/a")
            else:  # the median of the rounds' ratios: each ratio compares runs of the same round
                row.append(fmt(median([a["rps"] / b["rps"] for a, b in zip(t.results[c], baseline.results[c])]), 2))
        if 1 in conns:
            if floor is None or t is floor:
                row.append("—" if t is floor else "n/a")
            else:
                row.append(fmt(median([a["p50"] - b["p50"] for a, b in zip(t.results[1], floor.results[1])]), 2))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def cpu_table(targets: list[Target], conns: list[int]) -> str:
    head = ["target"] + [f"CPU ms/req c={c}" for c in conns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in targets:
        lines.append("| " + " | ".join([t.name] + [fmt(median([r["cpu_ms"] for r in t.results[c]]), 3) for c in conns])
                     + " |")
    return "\n".join(lines)


def variants_table(variants: list[Target], conns: list[int], gateway: Target) -> str:
    head = (["gateway variant"] + [f"req/s c={c}" for c in conns] + [f"p50 ms c={c}" for c in conns]
            + [f"p99 ms c={c}" for c in conns] + [f"x gateway balance c={c}" for c in conns])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in variants:
        row = [t.name]
        row += [fmt(median([r["rps"] for r in t.results[c]])) for c in conns]
        row += [fmt(median([r["p50"] for r in t.results[c]]), 2) for c in conns]
        row += [fmt(median([r["p99"] for r in t.results[c]]), 2) for c in conns]
        row += [fmt(median([a["rps"] / b["rps"] for a, b in zip(t.results[c], gateway.results[c])]), 2) for c in conns]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def observability_table(observed: list[Target], conns: list[int], gateway: Target) -> str:
    """For each gateway with something switched off: the full gateway's throughput as a share of
    its own (the median of the rounds' ratios; 95% = the part switched off costs 5%), and the
    CPU per request it saves."""
    head = (["gateway without", "what is off"] + [f"gateway req/s as % of it, c={c}" for c in conns]
            + [f"CPU ms/req saved (% of the gateway's) c={c}" for c in conns])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in observed:
        row = [t.name, OBSERVABILITY[t.name][0]]
        row += [fmt(100 * median([g["rps"] / v["rps"] for g, v in zip(gateway.results[c], t.results[c])]), 1) + "%"
                for c in conns]
        for c in conns:
            full = median([r["cpu_ms"] for r in gateway.results[c]])
            saved = full - median([r["cpu_ms"] for r in t.results[c]])
            row.append(f"{fmt(saved, 3)} ({fmt(100 * saved / full, 1)}%)")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def versions() -> str:
    out = []
    for package in ("litestar", "httpx", "httpcore", "uvicorn", "httptools", "msgspec", "jinja2", "aiohttp",
                    "fastapi", "pydantic"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(out)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default=",".join(ALL_TARGETS),
                        help=f"comma-separated, of: {', '.join(ALL_TARGETS)} (default: all)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk cell (default: %(default)g)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported (default: %(default)s)")
    parser.add_argument("--connections", default="1,32,128", help="wrk connections per cell (default: %(default)s)")
    parser.add_argument("--workers", default="1",
                        help="gateway worker processes; a list (1,2) adds one gateway target per value (default: %(default)s)")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default=None,
                        help="event loop of every target (default: uvloop if installed, as gateway serve)")
    parser.add_argument("--gateway-log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="gateway serve --log-level; info (its default) writes a line per webhook (default: %(default)s)")
    parser.add_argument("--rss-requests", type=int, default=100_000,
                        help="requests per RSS measure (done twice; 0: skip) (default: %(default)s)")
    parser.add_argument("--rss-max-seconds", type=float, default=300.0,
                        help="time cap of each RSS half; fewer requests are then reported (default: %(default)g)")
    parser.add_argument("--startup-mappings", type=int, default=500,
                        help="generated mappings for the startup measure (startup.py; 0: skip) (default: %(default)s)")
    parser.add_argument("--startup-rounds", type=int, default=5,
                        help="alternated rounds of the startup measure (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round of 1 s, 5000 requests for RSS, 50 mappings for startup")
    parser.add_argument("--check-only", action="store_true",
                        help="start every target, check its answer, stop (no wrk needed)")
    parser.add_argument("--profile", default="",
                        help="instead of the rounds: py-spy the gateway while wrk drives balance at these "
                             "connections (e.g. 1,32); prints the top functions (needs py-spy and ptrace rights)")
    parser.add_argument("--profile-nonblocking", action="store_true",
                        help="with --profile: py-spy --nonblocking (no pauses, but a sample may read a stack "
                             "mid-change and charge time to the wrong function; round 2 of docs/performance.md)")
    parser.add_argument("--profile-lines", action="store_true",
                        help="with --profile: keep line numbers (py-spy without --nolineno), so a function's own "
                             "time is split by line")
    parser.add_argument("--profile-seconds", type=float, default=20.0, help="seconds sampled per profile (default: %(default)g)")
    parser.add_argument("--hold", action="store_true",
                        help="after the check, print every target's URL and pid and wait for Ctrl-C (drive them by hand)")
    parser.add_argument("--before", type=Path, default=None, metavar="DIR",
                        help="also run `gateway serve` from this checkout of an earlier commit as target "
                             "gateway-before (git worktree add DIR <commit>): before and after in the same rounds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, configs, profiles)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.rss_requests = 1.0, 1, min(args.rss_requests, 5000)
        args.startup_mappings, args.startup_rounds = min(args.startup_mappings, 50), 1
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in args.targets if t not in ALL_TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(ALL_TARGETS)}")
    args.connections = [int(c) for c in args.connections.split(",")]
    args.workers = [int(w) for w in args.workers.split(",")]
    args.profile = [int(c) for c in args.profile.split(",") if c.strip()]
    if args.profile:
        args.targets = ["gateway"]
    if any(c < 1 for c in args.connections) or any(w < 1 for w in args.workers):
        parser.error("--connections and --workers must be positive")
    return args


def profile(args: argparse.Namespace, procs: Processes, tmp: Path, gateway: Target, pid: int) -> int:
    from benchmarks.hotpath.spy import summarise

    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise Abort("py-spy is not installed: pip install py-spy (or the `bench` extra)")
    wrk(procs, gateway, 32, 2, "warm")
    for c in args.profile:
        seconds = args.profile_seconds
        threads = 1 if c == 1 else 2
        load = procs.start("wrk", ["wrk", f"-t{threads}", f"-c{c}", f"-d{round(seconds + 6)}s", "--timeout", "10s",
                                   "-s", str(HERE / "post.lua"), gateway.url, "--", str(gateway.body_file)])
        time.sleep(2)
        raw = tmp / f"profile-c{c}.txt"
        command = [spy, "record", "--pid", str(pid), "--duration", f"{seconds:g}", "--rate", "250", "--format", "raw",
                   *([] if args.profile_lines else ["--nolineno"]), *(["--nonblocking"] if args.profile_nonblocking else []),
                   "-o", str(raw)]
        record = subprocess.run(command, capture_output=True, text=True)
        load.wait(seconds + 60)
        procs.stop("wrk", grace=2)
        out = (procs.logs / "wrk.log").read_text(errors="replace")
        match = re.search(r"^WRK_RESULT (\{.*\})$", out, re.M)
        if record.returncode != 0 or not raw.exists():
            raise Abort(f"py-spy failed (status {record.returncode}): {record.stderr[-1500:]}")
        print(f"\n## Profile of the gateway, balance at c={c} ({seconds:g} s sampled at 250 Hz)\n")
        print("$ " + " ".join(["py-spy", *command[1:3], "<gateway pid>", *command[4:-1], raw.name]))
        if match:
            r = json.loads(match.group(1))
            print(f"(under wrk -t{threads} -c{c}: {r['requests'] / (r['duration_us'] / 1e6):.0f} req/s, sampling on)\n")
        print(summarise(raw.read_text(errors="replace")))
    return 0


def _stop_by_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    global LOOP
    args = parse_args(argv)
    LOOP = args.loop
    if not args.check_only and shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk (or use --check-only)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="hotpath-"))
    procs = Processes(tmp)
    previous = signal.signal(signal.SIGTERM, _stop_by_signal)
    try:
        return run(args, procs, tmp)
    except Abort as exc:
        print(f"\nbenchmark aborted: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping every process started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, previous)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, procs: Processes, tmp: Path) -> int:
    wanted = set(args.targets)
    needs_gateway = bool(wanted & {"gateway", *VARIANTS, *OBSERVABILITY}) or args.rss_requests > 0
    provider_port = free_port()
    provider_url = f"http://127.0.0.1:{provider_port}"
    procs.start("provider", uvicorn_argv("benchmarks.hotpath.fake_provider:app", provider_port))
    wait_ready(procs, "provider", provider_port)

    targets: list[Target] = []
    variants: list[Target] = []
    gateway_pid: int | None = None
    gateway_start: float | None = None
    first_gateway: Target | None = None
    if "provider" in wanted:
        targets.append(Target("provider", f"{provider_url}/v1/cards/lookup", "post", PROVIDER_BODY, expect_provider,
                              pid=procs.running["provider"].pid))
    if needs_gateway:
        config = write_gateway_config(tmp, provider_url)
        for i, workers in enumerate(args.workers):
            name = "gateway" if i == 0 and workers == 1 else f"gateway-w{workers}"
            port = free_port()
            proc = procs.start(name, gateway_argv(config, port, workers, args.gateway_log_level))
            seconds = wait_ready(procs, name, port, "/health")
            base = f"http://127.0.0.1:{port}"
            t = Target(name, f"{base}/bench/gift_card/balance", "post", BALANCE_BODY, expect_balance, pid=proc.pid)
            if i == 0:
                gateway_pid, gateway_start, first_gateway = proc.pid, seconds, t
                if "gateway-issue" in wanted:
                    variants.append(Target("gateway-issue", f"{base}/bench/gift_card/issue", "issue", None, expect_issue,
                                                           pid=proc.pid))
                if "gateway-3step" in wanted:
                    variants.append(Target("gateway-3step", f"{base}/bench3/gift_card/balance", "post", BALANCE_BODY,
                                           expect_balance, pid=proc.pid))
            if "gateway" in wanted or i > 0:
                targets.append(t)
        for name, (_, extra, bare) in OBSERVABILITY.items():
            if name not in wanted:
                continue
            port = free_port()
            level = "warning" if name in ("gateway-no-log", "gateway-bare") else args.gateway_log_level
            proc = procs.start(name, gateway_argv(config, port, 1, level, extra=extra, bare=bare))
            wait_ready(procs, name, port, "/health")
            targets.append(Target(name, f"http://127.0.0.1:{port}/bench/gift_card/balance", "post", BALANCE_BODY,
                                  expect_balance, pid=proc.pid))
    if args.before is not None:
        # The same gateway serve from an earlier checkout (`python -m` puts its folder first on
        # the path), on the same config and mapping: before and after in one run.
        port = free_port()
        argv = gateway_argv(write_gateway_config(tmp, provider_url, name="gateway-before.yaml"), port, 1,
                            args.gateway_log_level)
        proc = procs.start("gateway-before", argv, cwd=args.before)
        wait_ready(procs, "gateway-before", port, "/health")
        targets.append(Target("gateway-before", f"http://127.0.0.1:{port}/bench/gift_card/balance", "post", BALANCE_BODY,
                              expect_balance, pid=proc.pid))
    for name, app in ADAPTERS.items():
        if name in wanted:
            port = free_port()
            proc = procs.start(name, uvicorn_argv(app, port), env={"PROVIDER_URL": provider_url})
            wait_ready(procs, name, port)
            targets.append(Target(name, f"http://127.0.0.1:{port}/bench/gift_card/balance", "post", BALANCE_BODY,
                                  expect_balance, pid=proc.pid))

    print(f"servers: uvicorn, one worker each, --http httptools, loop {event_loop()}, keep-alive {KEEP_ALIVE:g}s; "
          f"gateway --log-level {args.gateway_log_level}", flush=True)
    check_answers(targets + variants + ([first_gateway] if first_gateway and first_gateway not in targets else []))
    if args.check_only:
        print("check-only: every target answered the expected body")
        return 0
    if args.hold:
        for t in targets + variants:
            print(f"{t.name:<18} {t.url}  body: {json.dumps(t.body) if t.body else '(issue.lua)'}")
        print("pids: " + ", ".join(f"{name} {proc.pid}" for name, proc in procs.running.items()), flush=True)
        print("holding; Ctrl-C stops everything", flush=True)
        while True:
            time.sleep(3600)

    for t in targets + variants:
        if t.body is not None:
            t.body_file = tmp / f"{t.name}.json"
            t.body_file.write_text(json.dumps(t.body))
    if first_gateway is not None and first_gateway.body_file is None:
        first_gateway.body_file = tmp / "gateway.json"
        first_gateway.body_file.write_text(json.dumps(first_gateway.body))

    run_id = uuid.uuid4().hex[:10]
    if args.profile:
        assert first_gateway is not None and gateway_pid is not None
        return profile(args, procs, tmp, first_gateway, gateway_pid)
    rss: list[tuple[str, int]] = []
    if gateway_pid is not None and args.rss_requests > 0:
        rss.append(("after start", rss_bytes(gateway_pid)))

    everything = targets + variants
    print(f"\nwarm-up, then {args.rounds} interleaved rounds of {args.duration:g}s per target and concurrency "
          f"({len(everything)} targets x {len(args.connections)} concurrencies)", flush=True)
    for t in everything:  # warm-up: connection pools, caches, the first compile of anything lazy
        wrk(procs, t, 32, 1, f"{run_id}-warm")
    for r in range(args.rounds):
        for c in args.connections:
            for k in range(len(everything)):
                t = everything[(k + r) % len(everything)]  # rotate who goes first
                res = wrk(procs, t, c, args.duration, f"{run_id}-r{r}c{c}")
                t.results.setdefault(c, []).append(res)
                flag = f"  {res['errors']:.0f} ERRORS" if res["errors"] else ""
                print(f"round {r + 1} c={c:<4} {t.name:<18} {res['rps']:>9.0f} req/s  p50 {res['p50']:7.2f} ms  "
                      f"p99 {res['p99']:7.2f} ms  CPU {res['cpu_ms']:.3f} ms/req{flag}", flush=True)

    extras: list[str] = []
    if gateway_pid is not None and args.rss_requests > 0 and first_gateway is not None:
        print(f"\nRSS: 2 x {args.rss_requests} balance requests at c={RSS_CONNECTIONS} on the gateway "
              f"(each at most {args.rss_max_seconds:g} s)", flush=True)
        rss.append(("after the rounds", rss_bytes(gateway_pid)))
        n1, rps1 = drive_requests(procs, first_gateway, args.rss_requests, RSS_CONNECTIONS, run_id, args.rss_max_seconds)
        rss.append((f"+{n1} requests", rss_bytes(gateway_pid)))
        n2, rps2 = drive_requests(procs, first_gateway, args.rss_requests, RSS_CONNECTIONS, run_id, args.rss_max_seconds)
        rss.append((f"+{n2} more", rss_bytes(gateway_pid)))
        base = dict(rss)["after the rounds"]
        lines = [f"| gateway RSS (pid {gateway_pid}, workers {args.workers[0]}) | MiB | growth |", "|---|---|---|"]
        previous = None
        for label, value in rss:
            growth = "" if previous is None else f"{(value - previous) / previous * 100:+.1f}%"
            lines.append(f"| {label} | {value / 2**20:.1f} | {growth} |")
            previous = value
        lines.append(f"\n(first {n1} at {rps1:.0f} req/s, next {n2} at {rps2:.0f} req/s; "
                     f"growth over both: {(rss[-1][1] - base) / base * 100:+.1f}% from after the rounds)")
        extras.append("\n".join(lines))

    if args.startup_mappings > 0:
        from benchmarks.hotpath.startup import measure as measure_startup

        print(f"\nstartup with {args.startup_mappings} generated mappings (benchmarks/hotpath/startup.py)", flush=True)
        table = measure_startup(procs, tmp, mappings=args.startup_mappings, rounds=args.startup_rounds, before=args.before)
        if gateway_start is not None:
            table += (f"\n\n(`gateway serve` on this benchmark's gateway.yaml, 2 providers, in this venv, "
                      f"before the rounds: {gateway_start:.2f} s)")
        extras.append(table)

    baseline = next((t for t in targets if t.name == BASELINE), None)
    floor = next((t for t in targets if t.name == "provider"), None)
    print(f"\n## Hot path: balance webhook (median of {args.rounds} interleaved rounds, {args.duration:g} s per cell)\n")
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {versions()}; "
          f"servers: uvicorn, 1 worker, httptools, {event_loop()} loop; wrk -t1 at c=1, -t2 above; "
          f"client, provider and targets share the machine.\n")
    print(main_table(targets, args.connections, baseline, floor))
    if variants and first_gateway is not None and first_gateway.results:
        print("\n### The gateway, other workloads (same rounds)\n")
        print(variants_table(variants, args.connections, first_gateway))
    observed = [t for t in targets if t.name in OBSERVABILITY]
    if observed and first_gateway is not None and first_gateway.results:
        print("\n### What observability costs (same rounds)\n")
        print(observability_table(observed, args.connections, first_gateway))
    print("\n### CPU time per request (user + system of the target's process, median of the rounds)\n")
    print("On a shared machine this is steadier than req/s: it does not depend on who else had the cores.\n")
    print(cpu_table(targets + variants, args.connections))
    for block in extras:
        print()
        print(block)
    bad = [(t.name, c) for t in everything for c in args.connections
           if any(r["errors"] for r in t.results.get(c, []))]
    if bad:
        print(f"\nWARNING: errors (non-2xx or socket errors) in {bad}: those cells are not comparable.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
