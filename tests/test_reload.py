"""Reloading in place, over real HTTP against a `gateway serve` subprocess: SIGHUP (with one
worker and with two) and `gateway reload` swap the configuration while a client keeps driving
webhooks, with no failed request; providers added and removed take effect; a broken mapping
keeps the running plan and logs its diagnostic at file:line:col, one line, no traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from .conftest import ROOT, SANDBOX_KEY_FILE, SANDBOX_MAPPING, Sandbox, write_config

BALANCE = {"identifier": {"number": "6006491111111111", "pin": "480163"}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(sandbox: Sandbox, mapping: Path = SANDBOX_MAPPING) -> dict:
    return {"mapping": str(mapping), "vars": {"base_url": sandbox.url},
            "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none"}


def _write(tmp: Path, providers: dict) -> Path:
    return write_config(tmp, providers, idempotency={"store": "sqlite:///idempotency.sqlite3", "key_file": "k.key"})


class Server:
    def __init__(self, tmp: Path, workers: int) -> None:
        self.port, self.log, self.pid_file = _free_port(), tmp / "serve.log", tmp / "serve.pid"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--config", str(tmp / "gateway.yaml"),
                 "--port", str(self.port), "--workers", str(workers), "--pid-file", str(self.pid_file)],
                cwd=tmp, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        # Every worker must be up: with two, /health answering once is not enough.
        self.wait_for(lambda: self.count("Application startup complete") >= workers, "start")

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines())

    def wait_for(self, condition, what: str, limit: float = 60) -> None:
        deadline = time.monotonic() + limit  # a bound on waiting, not an assertion on speed
        while not condition():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gateway serve did not {what}:\n" + "\n".join(self.lines()[-30:]))
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    started: list[Server] = []

    def start(workers: int = 1) -> Server:
        started.append(Server(tmp_path, workers))
        return started[-1]

    yield start
    for server in started:
        server.stop()


class Load:
    """Clients posting balance webhooks back to back, each recording every answer."""

    def __init__(self, url: str, clients: int = 6) -> None:
        self.url, self.stop_flag = url, threading.Event()
        self.ok, self.failures = 0, []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._drive, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _drive(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop_flag.is_set():
                try:
                    r = client.post("/sandbox/gift_card/balance", json=BALANCE)
                    outcome = None if r.status_code == 200 and r.json()["value"] == 50 else f"{r.status_code} {r.text}"
                except httpx.HTTPError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    if outcome is None:
                        self.ok += 1
                    else:
                        self.failures.append(outcome)

    def finish(self) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(60)


@pytest.mark.parametrize("workers", [1, 2])
def test_ten_reloads_under_load_fail_no_request_and_providers_come_and_go(sandbox, tmp_path, serve, workers):
    with_extra = {"sandbox": _entry(sandbox), "extra": _entry(sandbox)}
    _write(tmp_path, {"sandbox": _entry(sandbox)})
    server = serve(workers)
    load = Load(server.url)
    try:
        server.wait_for(lambda: load.ok >= 20, "answer the load")
        for i in range(1, 11):
            extra = i % 2 == 1
            _write(tmp_path, with_extra if extra else {"sandbox": _entry(sandbox)})
            before = load.ok
            if i % 2:
                os.kill(server.proc.pid, signal.SIGHUP)
            else:
                done = subprocess.run([sys.executable, "-m", "gateway.cli", "reload", "--pid-file", str(server.pid_file)],
                                      cwd=tmp_path, capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stderr
            server.wait_for(lambda: server.count('"reloaded ') >= i * workers, f"reload ({i})")
            server.wait_for(lambda: load.ok > before + 5, "keep answering after the reload")
            # every worker now has the new plan: `extra` answers only while it is configured
            for _ in range(2 * workers):
                r = httpx.post(f"{server.url}/extra/gift_card/balance", json=BALANCE, timeout=30)
                if extra:
                    assert r.status_code == 200, r.text
                else:
                    assert (r.status_code, r.json()["error_code"]) == (400, "unknown_provider")
                # and /schema describes the providers served now
                doc = httpx.get(f"{server.url}/schema/openapi.json", timeout=30).json()
                [param] = [p for p in doc["paths"]["/{provider}/gift_card/balance"]["post"]["parameters"]
                           if p["name"] == "provider"]
                assert param["schema"]["enum"] == (["extra", "sandbox"] if extra else ["sandbox"])
    finally:
        load.finish()
    assert load.failures == []
    assert load.ok > 100
    assert server.proc.poll() is None
    assert not any("Traceback" in line for line in server.lines())


def test_a_broken_mapping_keeps_the_running_plan_and_logs_its_diagnostic(sandbox, tmp_path, serve):
    _write(tmp_path, {"sandbox": _entry(sandbox)})
    server = serve(1)
    broken = tmp_path / "broken.yaml"
    broken.write_text(SANDBOX_MAPPING.read_text().replace("operations:\n", "operations:\n  bogus: {}\n", 1))
    line = broken.read_text().splitlines().index("  bogus: {}") + 1
    _write(tmp_path, {"sandbox": _entry(sandbox, broken), "extra": _entry(sandbox)})
    os.kill(server.proc.pid, signal.SIGHUP)
    server.wait_for(lambda: server.count("reload of") >= 1, "report the reload")
    errors = [json.loads(entry)["msg"] for entry in server.lines() if '"logger":"gateway.reload"' in entry
              and '"level":"error"' in entry]
    assert any(f"broken.yaml:{line}:3: GW030 unknown operation `bogus`" in m for m in errors), errors
    assert any("still serving the previous configuration" in m for m in errors)
    assert not any("Traceback" in entry for entry in server.lines())
    r = httpx.post(f"{server.url}/sandbox/gift_card/balance", json=BALANCE, timeout=30)
    assert r.status_code == 200
    r = httpx.post(f"{server.url}/extra/gift_card/balance", json=BALANCE, timeout=30)
    assert r.json()["error_code"] == "unknown_provider"  # nothing of the broken configuration applied
    # fixed: the next reload takes it
    _write(tmp_path, {"sandbox": _entry(sandbox), "extra": _entry(sandbox)})
    os.kill(server.proc.pid, signal.SIGHUP)
    server.wait_for(lambda: server.count('"reloaded ') >= 1, "reload")
    assert httpx.post(f"{server.url}/extra/gift_card/balance", json=BALANCE, timeout=30).status_code == 200


def test_gateway_reload_without_a_running_server_says_so(tmp_path):
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "reload", "--config", str(tmp_path / "gateway.yaml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "no pid file at" in done.stderr and "gateway.pid" in done.stderr


def test_the_pid_file_is_written_while_serving_and_removed_after(sandbox, tmp_path, serve):
    _write(tmp_path, {"sandbox": _entry(sandbox)})
    server = serve(1)
    assert server.pid_file.read_text().strip() == str(server.proc.pid)
    server.stop()
    assert server.proc.returncode == 0
    assert not server.pid_file.exists()
