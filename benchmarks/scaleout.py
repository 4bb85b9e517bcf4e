"""Scale-out under faults: HAProxy (deploy/haproxy.cfg) in front of three `gateway serve` instances.

    python benchmarks/scaleout.py                      # full sizes, PostgreSQL then Redis
    python benchmarks/scaleout.py --store redis --short
    python benchmarks/scaleout.py --health-path /health  # force the health check path

One sandbox simulator (`python -m simulators.sandbox`) is the provider of every instance; the
instances share one idempotency store (PostgreSQL or Redis) and sit behind HAProxy running the
shipped `deploy/haproxy.cfg` unchanged (its site values come from the environment). A mixed load
(balance, issue, activate, deactivate, and purchases: create instrument, capture, revoke, refund)
sends every idempotency key several times at once, spread over the instances by HAProxy, while
one instance is SIGKILLed and restarted and another is SIGTERMed (a rolling deploy) and
restarted. Every request that fails (status >= 500 or a broken connection) is sent again with its
key and body, as NewStore does, until it is answered (bounded). Then it checks, from the answers
and from the sandbox's own state and call log:

- every request was answered, and every answer with the same key is byte-identical;
- every key took effect once at the provider: one card per issue key, one hold / redemption /
  credit / release per purchase, each card's funds exactly what one run of each step leaves;
  the provider may see a key's call more than once only after an unknown outcome (an instance
  died holding it) and then replays it (the sandbox honours the derived Idempotency-Key);
- every 5xx answer, the load balancer's included, is NewStore's JSON Error body;
- with every instance down, HAProxy answers 503 with that JSON body (`request_accepted: false`);
- throughput and p50/p99 of a short fixed load with 1, 2 and 3 instances enabled.

HAProxy is Debian's (`apt-get install -y haproxy` when missing). tests/test_scaleout.py runs
`--short`. Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
MAPPING = ROOT / "mappings" / "sandbox.yaml"
SANDBOX_KEY = ROOT / "simulators" / "sandbox" / "sandbox.key"

# The one place the health path is chosen. /readyz (503 while draining or when the store is
# unreachable) is what deploy/ checks; a gateway without it answers 404 and the older /health,
# which only says the process serves, is used instead.
HEALTH_PATH = "/readyz"
FALLBACK_HEALTH_PATH = "/health"

INSTANCES = ("gw1", "gw2", "gw3")
PROVIDER = "sandbox"
STORES = ("postgres", "redis")
POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS", "redis://127.0.0.1:6379/15")


@dataclass(frozen=True)
class Sizes:
    issue: int          # issue keys
    activate: int       # activate keys (one registered card each)
    deactivate: int     # deactivate keys (one active card each)
    purchases: int      # purchases: create instrument, capture, revoke, refund (4 keys each)
    balance: int        # balance requests (no key)
    copies: int         # times each key is sent, at once
    concurrency: int    # requests in flight
    bench_requests: int     # per instance count, for throughput
    bench_concurrency: int


FULL = Sizes(issue=300, activate=100, deactivate=100, purchases=100, balance=300, copies=3, concurrency=48,
             bench_requests=1500, bench_concurrency=32)
SHORT = Sizes(issue=60, activate=20, deactivate=20, purchases=25, balance=60, copies=3, concurrency=24,
              bench_requests=150, bench_concurrency=16)

RETRY_PAUSES = (0.2, 0.5, 1.0)   # NewStore-like pauses between tries; the last repeats
RETRY_FOR = 60.0                 # seconds a request is retried before it counts as never answered
KILL_AT, TERM_AT = 0.25, 0.55    # fractions of the load done when gw1 is killed and gw2 is stopped


# --- processes --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_haproxy() -> str:
    """The haproxy binary, installed from Debian when missing (the machine's root may do that)."""
    found = shutil.which("haproxy") or (Path("/usr/sbin/haproxy").exists() and "/usr/sbin/haproxy")
    if found:
        return str(found)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "haproxy"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"cannot install haproxy: {done.stderr[-500:]}")
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(found).exists():
        raise RuntimeError("haproxy installed but not found")
    return found


class Process:
    """A child in its own process group, its output in a file, stopped on exit."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path = ROOT) -> None:
        self.name, self.argv, self.log, self.env, self.cwd = name, argv, log, env, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=out,
                                         start_new_session=True)

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            if self.wait(25) is None:
                self.signal(signal.SIGKILL)
                self.wait(5)


def wait_http(url: str, ok: set[int], timeout: float = 30.0) -> int:
    """Poll ``url`` until it answers a status in ``ok``; return that status."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            status = httpx.get(url, timeout=2).status_code
            if status in ok:
                return status
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer {sorted(ok)} within {timeout:g}s")


class Haproxy:
    """HAProxy on the shipped config, driven through its admin socket."""

    def __init__(self, binary: str, workdir: Path, backends: dict[str, int], health_path: str) -> None:
        self.port = free_port()
        self.socket = workdir / "haproxy.sock"
        env = {**os.environ, "GATEWAY_LB_BIND": f"127.0.0.1:{self.port}", "GATEWAY_LB_SOCKET": str(self.socket),
               "GATEWAY_HEALTH_PATH": health_path}
        for i, name in enumerate(INSTANCES, 1):
            env[f"GATEWAY_{i}"] = f"127.0.0.1:{backends[name]}"
        check = subprocess.run([binary, "-c", "-f", str(HAPROXY_CFG)], env=env, capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"deploy/haproxy.cfg does not load: {check.stdout}{check.stderr}")
        # -db: stay in the foreground; -W would fork a master: one process is easier to stop.
        self.process = Process("haproxy", [binary, "-db", "-f", str(HAPROXY_CFG)], workdir / "haproxy.log", env)
        self.url = f"http://127.0.0.1:{self.port}"
        end = time.monotonic() + 10
        while not self.socket.exists() and time.monotonic() < end:
            time.sleep(0.05)

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def states(self) -> dict[str, str]:
        text = self.command("show stat").lstrip("# ")
        return {row["svname"]: row["status"] for row in csv.DictReader(io.StringIO(text))
                if row["pxname"] == "gateway" and row["svname"] in INSTANCES}

    def wait_states(self, want: dict[str, str], timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            states = self.states()
            if all(states.get(k) == v for k, v in want.items()):  # "UP 1/2" is an UP on its way down
                return
            time.sleep(0.1)
        raise RuntimeError(f"HAProxy servers did not reach {want}: {self.states()}")


# --- the workload -----------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str


@dataclass
class Sent:
    """One request (one copy of a key), with every try's outcome."""
    op: str
    key: str | None
    path: str
    body: dict[str, Any]
    tries: list[str] = field(default_factory=list)   # "200", "503 request_in_progress", "conn: ..."
    answer: Answer | None = None
    failures_5xx: list[Answer] = field(default_factory=list)


class Load:
    def __init__(self, url: str, concurrency: int) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30,
                                        limits=httpx.Limits(max_connections=concurrency,
                                                            max_keepalive_connections=concurrency))
        self.gate = asyncio.Semaphore(concurrency)
        self.sent: list[Sent] = []
        self.done = 0
        self.started = 0
        # Requests past `hold_at` wait for `release`: the rolling deploy then happens under load,
        # however long the killed instance takes to come back.
        self.hold_at: float | None = None
        self.release = asyncio.Event()
        self.latencies: list[float] = []

    async def send(self, op: str, key: str | None, path: str, body: dict[str, Any], retry: bool = True) -> Sent:
        item = Sent(op, key, path, body)
        self.sent.append(item)
        self.started += 1
        if self.hold_at is not None and self.started > self.hold_at:
            await self.release.wait()
        started = time.monotonic()
        pauses = iter(RETRY_PAUSES)
        pause = RETRY_PAUSES[0]
        while True:
            async with self.gate:
                t0 = time.perf_counter()
                try:
                    r = await self.client.post(path, json=body)
                    answer = Answer(r.status_code, r.content, r.headers.get("content-type", ""))
                    self.latencies.append(time.perf_counter() - t0)
                except httpx.TransportError as exc:
                    answer = None
                    item.tries.append(f"conn: {type(exc).__name__}")
            if answer is not None:
                code = _error_code(answer)
                item.tries.append(f"{answer.status} {code}".strip())
                if answer.status < 500:
                    item.answer = answer
                    break
                item.failures_5xx.append(answer)
            if not retry or time.monotonic() - started > RETRY_FOR:
                break
            pause = next(pauses, pause)
            await asyncio.sleep(pause)
        self.done += 1
        return item

    async def copies(self, n: int, op: str, key: str, path: str, body: dict[str, Any]) -> list[Sent]:
        return list(await asyncio.gather(*(self.send(op, key, path, body) for _ in range(n))))


def _error_code(answer: Answer) -> str:
    if answer.status < 400:
        return ""
    try:
        return str(json.loads(answer.body).get("error_code", "?"))
    except (ValueError, AttributeError):
        return "<not json>"


def _first_ok(items: list[Sent]) -> dict[str, Any] | None:
    for item in items:
        if item.answer and item.answer.status == 200:
            return json.loads(item.answer.body)[0] if item.op in PAYMENT_OPS else json.loads(item.answer.body)
    return None


PAYMENT_OPS = ("create_instrument", "capture", "revoke", "refund")
GIFT = f"/{PROVIDER}/gift_card"
PAY = f"/{PROVIDER}/financial_instruments"


@dataclass
class Cards:
    """The cards a run adds to the sandbox, by purpose."""
    activate: list[str]
    deactivate: list[str]
    purchase: list[str]


def add_cards(sim: httpx.Client, run: str, sizes: Sizes) -> Cards:
    base = int(uuid.UUID(run).int % 10**6)

    def number(kind: int, i: int) -> str:
        return f"60064{kind}{base:06d}{i:04d}"

    cards = Cards([number(7, i) for i in range(sizes.activate)], [number(8, i) for i in range(sizes.deactivate)],
                  [number(9, i) for i in range(sizes.purchases)])
    for n in cards.activate:
        sim.post("/_sim/cards", json={"number": n, "state": "registered", "amount_minor": 0, "currency": "USD",
                                      "pin": "4321"}).raise_for_status()
    for n in cards.deactivate + cards.purchase:
        sim.post("/_sim/cards", json={"number": n, "state": "active", "amount_minor": 10000, "currency": "USD",
                                      "pin": "4321"}).raise_for_status()
    return cards


def _txn(tid: str, instrument: str, capture: str, refund: str | None, reason: str) -> dict[str, Any]:
    t: dict[str, Any] = {"transaction_id": tid, "instrument_id": instrument, "capture_amount": float(capture),
                         "currency": "USD", "reason": reason}
    if refund is not None:
        t["refund_amount"] = float(refund)
    return t


async def purchase(load: Load, run: str, i: int, card: str, copies: int) -> None:
    """Hold 30.00, capture 20.00, revoke the 10.00 left, refund 5.00: each step's key sent `copies` times."""
    k = f"{run}-p{i}"
    create = {"account_id": f"{run}-acct-{i}", "idempotency_key": f"{k}-pay", "retry_id": "r-1",
              "metadata": {"pin": "4321"},
              "arguments": {"amount": 30.00, "currency": "USD", "payment_method": "gift_card",
                            "instrument": {"type": "token", "identifier": card}}}
    auth = _first_ok(await load.copies(copies, "create_instrument", f"{k}-pay", PAY, create))
    if auth is None:
        return
    iid = auth["instrument_id"]
    a = _txn(iid, iid, "30.00", None, "authorization")
    capture = {"account_id": f"{run}-acct-{i}", "idempotency_key": f"{k}-capture", "transactions": [a],
               "arguments": {"amount": 20.00, "currency": "USD"}}
    if _first_ok(await load.copies(copies, "capture", f"{k}-capture", f"{PAY}/{iid}/_capture", capture)) is None:
        return
    c = _txn("c-1", iid, "-20.00", "20.00", "capture")
    revoke = {"account_id": f"{run}-acct-{i}", "idempotency_key": f"{k}-revoke", "transactions": [a, c]}
    if _first_ok(await load.copies(copies, "revoke", f"{k}-revoke", f"{PAY}/{iid}/_revoke", revoke)) is None:
        return
    v = _txn(f"{iid}-revoke", iid, "-10.00", "0", "revoke")
    refund = {"account_id": f"{run}-acct-{i}", "idempotency_key": f"{k}-refund", "transactions": [a, c, v],
              "arguments": {"amount": 5.00, "currency": "USD"}, "metadata": {"original_operation": "refund"}}
    await load.copies(copies, "refund", f"{k}-refund", f"{PAY}/{iid}/_refund", refund)


def workload(load: Load, run: str, sizes: Sizes, cards: Cards) -> list[Any]:
    """Coroutines of the whole mixed load, interleaved so every kind runs throughout."""
    n = sizes.copies
    kinds: list[list[Any]] = [
        [load.copies(n, "issue", f"{run}-issue-{i}", f"{GIFT}/issue",
                     {"amount": {"value": 10, "currency": "USD"}, "customer": {"id": f"{run}-cust-{i}"},
                      "idempotence_key": f"{run}-issue-{i}"}) for i in range(sizes.issue)],
        [load.copies(n, "activate", f"{run}-act-{i}", f"{GIFT}/activate",
                     {"card_number": c, "amount": {"value": 40, "currency": "USD"}, "customer": {"id": "c"},
                      "idempotence_key": f"{run}-act-{i}"}) for i, c in enumerate(cards.activate)],
        [load.copies(n, "deactivate", f"{run}-deact-{i}", f"{GIFT}/deactivate",
                     {"card_number": c, "store_id": "store-1", "idempotence_key": f"{run}-deact-{i}"})
         for i, c in enumerate(cards.deactivate)],
        [purchase(load, run, i, c, n) for i, c in enumerate(cards.purchase)],
        [load.send("balance", None, f"{GIFT}/balance",
                   {"identifier": {"number": "6006491111111111", "pin": "480163"}}) for _ in range(sizes.balance)],
    ]
    out: list[Any] = []
    while any(kinds):
        for k in kinds:
            if k:
                out.append(k.pop(0))
    return out


def expected_requests(sizes: Sizes) -> int:
    return sizes.copies * (sizes.issue + sizes.activate + sizes.deactivate + 4 * sizes.purchases) + sizes.balance


# --- one run ----------------------------------------------------------------------------------

@dataclass
class Report:
    store: str
    health_path: str = ""
    requests: int = 0
    keys: int = 0
    first_try_failures: dict[str, int] = field(default_factory=dict)
    retried_requests: int = 0
    max_tries: int = 0
    unanswered: int = 0
    provider_calls_per_key: dict[int, int] = field(default_factory=dict)
    keys_replayed_by_provider: int = 0
    faults: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    throughput: dict[int, dict[str, float]] = field(default_factory=dict)
    all_down: str = ""
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"== {self.store}: HAProxy + 3 gateway instances, health check {self.health_path}",
                 f"load: {self.requests} requests for {self.keys} idempotency keys (+ balance) in {self.load_seconds:.1f}s; "
                 f"faults: {'; '.join(self.faults)}",
                 "first-try failures: " + (", ".join(f"{k} x{v}" for k, v in sorted(self.first_try_failures.items()))
                                           or "none"),
                 f"requests retried: {self.retried_requests} (most tries for one request: {self.max_tries}); "
                 f"never answered: {self.unanswered}",
                 "provider calls per key: " + ", ".join(f"{calls} call(s): {keys} keys"
                                                         for calls, keys in sorted(self.provider_calls_per_key.items()))
                 + f"; keys the provider replayed: {self.keys_replayed_by_provider}",
                 f"all instances down: {self.all_down}",
                 "throughput (fixed load: balance + issue, new keys):"]
        for n, t in sorted(self.throughput.items()):
            lines.append(f"  {n} instance(s): {t['rps']:.0f} req/s, p50 {t['p50']*1000:.1f} ms, "
                         f"p99 {t['p99']*1000:.1f} ms ({t['errors']:.0f} errors)")
        lines.append("checks: " + ("all hold" if not self.problems else f"{len(self.problems)} FAILED"))
        lines += [f"  FAILED: {p}" for p in self.problems]
        return "\n".join(lines)


def gateway_config(workdir: Path, sandbox_url: str, store_url: str, deadline: float) -> Path:
    config = {
        "deadline": deadline,
        "providers": {PROVIDER: {"mapping": str(MAPPING), "vars": {"base_url": sandbox_url},
                                 "secrets": {"api_key": {"file": str(SANDBOX_KEY)}}, "inbound": "none"}},
        "idempotency": {"store": store_url, "lease": deadline + 2, "max_connections": 20,
                        "encryption_keys": [{"id": "scaleout", "key": {"env": "GATEWAY_SCALEOUT_KEY"}}]},
    }
    path = workdir / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def gateway_argv(config: Path, port: int) -> list[str]:
    script = Path(sys.executable).with_name("gateway")
    head = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())"]
    # --drain-delay 3: after SIGTERM, /readyz answers 503 while the instance still serves, longer
    # than HAProxy's `fall 2` x `inter 1s`, so a rolling stop takes it out before its socket closes
    # (docs/deploy.md, "Health checks and draining").
    return head + ["serve", "--config", str(config), "--port", str(port), "--no-companions", "--log-level", "info",
                   "--drain-delay", "3"]


def choose_health_path(port: int, wanted: str) -> str:
    status = wait_http(f"http://127.0.0.1:{port}{wanted}", {200, 404, 503})
    if status == 404 and wanted == HEALTH_PATH:
        wait_http(f"http://127.0.0.1:{port}{FALLBACK_HEALTH_PATH}", {200})
        return FALLBACK_HEALTH_PATH
    wait_http(f"http://127.0.0.1:{port}{wanted}", {200})
    return wanted


def run(store: str, sizes: Sizes, *, health_path: str = HEALTH_PATH, deadline: float = 4.0,
        store_url: str | None = None, keep: Path | None = None) -> Report:
    report = Report(store)
    url = store_url or (POSTGRES_URL if store == "postgres" else REDIS_URL)
    haproxy_bin = ensure_haproxy()
    with ExitStack() as stack:
        workdir = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scaleout-")))
        workdir.mkdir(parents=True, exist_ok=True)
        sandbox_port = free_port()
        sandbox = Process("sandbox", [sys.executable, "-m", "simulators.sandbox", "--port", str(sandbox_port),
                                      "--key-file", str(SANDBOX_KEY)], workdir / "sandbox.log")
        stack.callback(sandbox.stop)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        wait_http(f"{sandbox_url}/_sim/health", {200})
        sim = stack.enter_context(httpx.Client(base_url=sandbox_url, timeout=30))

        config = gateway_config(workdir, sandbox_url, url, deadline)
        env = {**os.environ, "GATEWAY_SCALEOUT_KEY": base64.b64encode(os.urandom(32)).decode()}
        ports = {name: free_port() for name in INSTANCES}
        gws = {name: Process(name, gateway_argv(config, ports[name]), workdir / f"{name}.log", env) for name in INSTANCES}
        for g in gws.values():
            stack.callback(g.stop)
        report.health_path = choose_health_path(ports["gw1"], health_path)
        for name in INSTANCES:
            wait_http(f"http://127.0.0.1:{ports[name]}{report.health_path}", {200})
        lb = Haproxy(haproxy_bin, workdir, ports, report.health_path)
        stack.callback(lb.process.stop)
        lb.wait_states({name: "UP" for name in INSTANCES})

        run_id = str(uuid.uuid4())
        cards = add_cards(sim, run_id, sizes)
        sim.delete("/_sim/calls").raise_for_status()
        load = Load(lb.url, sizes.concurrency)
        total = expected_requests(sizes)
        load.hold_at = int(TERM_AT * total) + sizes.concurrency

        async def faults() -> None:
            await until(lambda: load.done >= KILL_AT * total)
            gws["gw1"].signal(signal.SIGKILL)
            report.faults.append(f"gw1 SIGKILL at {load.done}/{total}")
            await asyncio.sleep(0.5)
            gws["gw1"].start()
            await asyncio.to_thread(lb.wait_states, {"gw1": "UP"}, 60)
            report.faults.append(f"gw1 back UP at {load.done}/{total}")
            # A rolling deploy: the next instance only once the previous one serves again.
            await until(lambda: load.done >= TERM_AT * total)
            gws["gw2"].signal(signal.SIGTERM)
            report.faults.append(f"gw2 SIGTERM at {load.done}/{total}")
            load.release.set()
            code = await asyncio.to_thread(gws["gw2"].wait, 30)
            report.faults.append(f"gw2 exited {code} at {load.done}/{total}")
            gws["gw2"].start()
            await asyncio.to_thread(lb.wait_states, {"gw2": "UP"}, 60)
            report.faults.append(f"gw2 back UP at {load.done}/{total}")

        async def until(predicate: Any) -> None:
            while not predicate():
                await asyncio.sleep(0.01)

        async def main() -> None:
            started = time.monotonic()
            injector = asyncio.create_task(faults())
            await asyncio.gather(*workload(load, run_id, sizes, cards))
            report.load_seconds = time.monotonic() - started
            await asyncio.wait_for(injector, 90)
            await load.client.aclose()

        asyncio.run(main())
        check_answers(report, load)
        check_provider(report, load, sim, run_id, cards, sizes)
        report.throughput = throughput(lb, sizes, run_id)
        report.all_down = all_down(report, lb, gws)
        check_logs(report, workdir, sim)
    return report


def check_answers(report: Report, load: Load) -> None:
    report.requests = len(load.sent)
    report.keys = len({s.key for s in load.sent if s.key})
    for s in load.sent:
        first = s.tries[0] if s.tries else "none"
        if not first.startswith(("200",)):
            report.first_try_failures[first] = report.first_try_failures.get(first, 0) + 1
        report.retried_requests += len(s.tries) > 1
        report.max_tries = max(report.max_tries, len(s.tries))
        if s.answer is None:
            report.unanswered += 1
            report.problems.append(f"never answered: {s.op} {s.key}: {s.tries[-5:]}")
        elif s.answer.status != 200:
            report.problems.append(f"{s.op} {s.key} answered {s.answer.status} {s.answer.body[:200]!r}")
        for a in s.failures_5xx:
            problem = _not_error_body(a)
            if problem:
                report.problems.append(f"{s.op}: a {a.status} answer is not NewStore's Error body: {problem}")
    by_key: dict[str, set[bytes]] = {}
    for s in load.sent:
        if s.key and s.answer:
            by_key.setdefault(s.key, set()).add(s.answer.body)
    for key, bodies in by_key.items():
        if len(bodies) > 1:
            report.problems.append(f"key {key} got {len(bodies)} different answers")


def _not_error_body(a: Answer) -> str:
    if not a.content_type.startswith("application/json"):
        return f"Content-Type {a.content_type!r}: {a.body[:80]!r}"
    try:
        body = json.loads(a.body)
    except ValueError:
        return f"not JSON: {a.body[:80]!r}"
    if not isinstance(body, dict) or not isinstance(body.get("error_code"), str) or not isinstance(body.get("message"), str):
        return f"no error_code/message: {a.body[:120]!r}"
    if "request_accepted" in body and not isinstance(body["request_accepted"], bool):
        return "request_accepted is not a boolean"
    return ""


def check_provider(report: Report, load: Load, sim: httpx.Client, run: str, cards: Cards, sizes: Sizes) -> None:
    """What the sandbox saw and holds: every key took effect exactly once."""
    calls = sim.get("/_sim/calls").json()["calls"]
    per_key: dict[str, int] = {}
    for c in calls:
        key = c["headers"].get("idempotency-key")
        if key:
            per_key[key] = per_key.get(key, 0) + 1
    keyed_ops = {s.key for s in load.sent if s.key}
    if len(per_key) != len(keyed_ops):
        report.problems.append(f"the provider saw {len(per_key)} idempotency keys for {len(keyed_ops)} keys sent")
    for n in per_key.values():
        report.provider_calls_per_key[n] = report.provider_calls_per_key.get(n, 0) + 1
    report.keys_replayed_by_provider = sum(1 for n in per_key.values() if n > 1)
    # A second provider call for one key is allowed only after an unknown outcome for that key
    # (an instance died holding it); the keys with such an outcome bound how many there may be.
    unknown = {s.key for s in load.sent if s.key and any(t.startswith(("conn", "502", "504")) for t in s.tries)}
    if report.keys_replayed_by_provider > len(unknown):
        report.problems.append(f"{report.keys_replayed_by_provider} keys reached the provider more than once, "
                               f"but only {len(unknown)} keys had an unknown outcome")

    all_cards = {c["number"]: c for c in sim.get("/_sim/cards").json()["cards"]}
    issued: dict[str, int] = {}
    for c in all_cards.values():
        ref = c.get("customer_ref") or ""
        if ref.startswith(f"{run}-cust-"):
            issued[ref] = issued.get(ref, 0) + 1
            if c["balance"]["amount_minor"] != 1000:
                report.problems.append(f"issued card for {ref} holds {c['balance']['amount_minor']}")
    if len(issued) != sizes.issue or any(n != 1 for n in issued.values()):
        twice = sum(1 for n in issued.values() if n > 1)
        report.problems.append(f"issue: {len(issued)} customers got cards (of {sizes.issue}), {twice} got more than one")
    for n in cards.activate:
        c = all_cards[n]
        if c["state"] != "active" or c["balance"]["amount_minor"] != 4000:
            report.problems.append(f"activate: card ****{n[-4:]} is {c['state']} with {c['balance']['amount_minor']}")
    for n in cards.deactivate:
        if all_cards[n]["state"] != "deactivated":
            report.problems.append(f"deactivate: card ****{n[-4:]} is {all_cards[n]['state']}")
    holds: dict[str, list[dict[str, Any]]] = {}
    for h in sim.get("/_sim/holds").json()["holds"]:
        holds.setdefault(h["card_number"], []).append(h)
    for n in cards.purchase:
        hs, c = holds.get(n, []), all_cards[n]
        if len(hs) != 1:
            report.problems.append(f"purchase on ****{n[-4:]}: {len(hs)} holds")
            continue
        h = hs[0]
        got = (h["state"], len(h["redemptions"]), len(h["credits"]), h["captured_minor"], h["refunded_minor"],
               c["funds_minor"], c["held_minor"])
        if got != ("released", 1, 1, 2000, 500, 8500, 0):
            report.problems.append(f"purchase on ****{n[-4:]}: (state, redemptions, credits, captured, refunded, "
                                   f"funds, held) = {got}, want ('released', 1, 1, 2000, 500, 8500, 0)")


def throughput(lb: Haproxy, sizes: Sizes, run: str) -> dict[int, dict[str, float]]:
    """A fixed load (half balance, half issue with new keys) with 1, 2 and 3 instances enabled."""
    out: dict[int, dict[str, float]] = {}
    for n in (1, 2, 3):
        for i, name in enumerate(INSTANCES):
            lb.command(f"set server gateway/{name} state {'ready' if i < n else 'maint'}")
        lb.wait_states({name: ("UP" if i < n else "MAINT") for i, name in enumerate(INSTANCES)})

        async def bench() -> dict[str, float]:
            load = Load(lb.url, sizes.bench_concurrency)
            coros = []
            for j in range(sizes.bench_requests):
                if j % 2:
                    key = f"{run}-bench{n}-{j}"
                    coros.append(load.send("issue", key, f"{GIFT}/issue",
                                           {"amount": {"value": 1, "currency": "USD"}, "customer": {"id": "bench"},
                                            "idempotence_key": key}, retry=False))
                else:
                    coros.append(load.send("balance", None, f"{GIFT}/balance",
                                           {"identifier": {"number": "6006491111111111", "pin": "480163"}},
                                           retry=False))
            t0 = time.perf_counter()
            await asyncio.gather(*coros)
            elapsed = time.perf_counter() - t0
            await load.client.aclose()
            lat = sorted(load.latencies) or [0.0]
            errors = sum(1 for s in load.sent if s.answer is None or s.answer.status != 200)
            return {"rps": len(load.sent) / elapsed, "p50": lat[len(lat) // 2],
                    "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "errors": errors}

        out[n] = asyncio.run(bench())
    for name in INSTANCES:
        lb.command(f"set server gateway/{name} state ready")
    return out


def all_down(report: Report, lb: Haproxy, gws: dict[str, Process]) -> str:
    """Every instance stopped: HAProxy itself must answer, with NewStore's Error body."""
    for g in gws.values():
        g.signal(signal.SIGTERM)
    for g in gws.values():
        g.wait(30)
    lb.wait_states({name: "DOWN" for name in INSTANCES})
    r = httpx.post(f"{lb.url}{GIFT}/issue", json={"amount": {"value": 1, "currency": "USD"},
                                                   "customer": {"id": "x"}, "idempotence_key": "down"})
    answer = Answer(r.status_code, r.content, r.headers.get("content-type", ""))
    problem = _not_error_body(answer)
    body = json.loads(r.content) if not problem else {}
    if problem or r.status_code != 503 or body.get("request_accepted") is not False:
        report.problems.append(f"with every instance down HAProxy answered {r.status_code} {r.content[:200]!r}")
    return f"{r.status_code} {r.headers.get('content-type')} {r.text}"


def check_logs(report: Report, workdir: Path, sim: httpx.Client) -> None:
    """No card number in clear in any log (gateway instances, HAProxy)."""
    numbers = {c["number"] for c in sim.get("/_sim/cards").json()["cards"]}
    for log in workdir.glob("*.log"):
        if log.name == "sandbox.log":
            continue
        # One pass for every run of digits, then a set lookup: a regex per card over megabytes of
        # log took minutes.
        leaked = numbers & set(re.findall(r"(?<!\d)\d{8,20}(?!\d)", log.read_text(errors="replace")))
        if leaked:
            report.problems.append(f"{log.name} shows {len(leaked)} card numbers in clear")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=[*STORES, "both"], default="both")
    parser.add_argument("--short", action="store_true", help="the CI sizes (tests/test_scaleout.py)")
    parser.add_argument("--health-path", default=HEALTH_PATH,
                        help=f"HAProxy's check (default {HEALTH_PATH}; {FALLBACK_HEALTH_PATH} if that answers 404)")
    parser.add_argument("--deadline", type=float, default=4.0, help="gateway.yaml deadline; the lease is 2 s more")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--keep", type=Path, help="keep configs and logs in this folder")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sizes = SHORT if args.short else FULL
    failed = False
    for store in (STORES if args.store == "both" else (args.store,)):
        keep = args.keep / store if args.keep else None
        report = run(store, sizes, health_path=args.health_path, deadline=args.deadline,
                     store_url=args.postgres if store == "postgres" else args.redis, keep=keep)
        print(report.text(), flush=True)
        failed |= bool(report.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
