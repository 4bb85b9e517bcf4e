"""Shared fixtures: the sandbox provider in its own process, gateway configs, an in-process app.

The gateway under test talks real HTTP on loopback to the simulator (``simulators/sandbox``), which
records every call it receives; tests read that log to prove what the provider saw. After every
test, the captured logs are searched for every card number and PIN the simulator knows.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml
from litestar.testing import TestClient

from gateway.compile.gateway_file import load
from gateway.http.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_MAPPING = ROOT / "mappings" / "sandbox.yaml"
SANDBOX_KEY_FILE = ROOT / "simulators" / "sandbox" / "sandbox.key"


class Sandbox:
    """Handle on the simulator process and its ``/_sim`` control API."""

    def __init__(self, url: str, log_file: Path) -> None:
        self.url = url
        self.log_file = log_file
        self.http = httpx.Client(base_url=url, timeout=10)

    def reset(self) -> None:
        self.http.post("/_sim/reset").raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        return self.http.get("/_sim/calls").json()["calls"]

    def fault(self, mode: str, **kw: Any) -> None:
        self.http.post("/_sim/faults", json={"mode": mode, **kw}).raise_for_status()

    def add_card(self, number: str, *, pin: str | None, state: str = "active", amount_minor: int = 0,
                 currency: str = "USD") -> None:
        body = {"number": number, "pin": pin, "state": state, "amount_minor": amount_minor, "currency": currency}
        self.http.post("/_sim/cards", json=body).raise_for_status()

    def cards(self) -> list[dict[str, Any]]:
        return self.http.get("/_sim/cards").json()["cards"]


def start_simulator(module: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Run ``python -m <module> --port 0`` and yield a handle on its `/_sim` control API."""
    log_file = tmp_path_factory.mktemp(module.rsplit(".", 1)[-1]) / "simulator.log"
    with log_file.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", module, "--port", "0"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"http://[\d.]+:\d+", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"{module} did not start: {line!r} {log_file.read_text()}")
    sim = Sandbox(match.group(0), log_file)
    for _ in range(100):
        try:
            sim.http.get("/_sim/health")
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    RUNNING.append(sim)
    yield sim
    RUNNING.remove(sim)
    proc.terminate()
    proc.wait(10)
    leaked = _leaks(log_file.read_text(errors="replace"), sim_secrets_seen)
    assert not leaked, f"{module}'s own output shows card data: {leaked}"


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    yield from start_simulator("simulators.sandbox", tmp_path_factory)


RUNNING: list[Sandbox] = []  # every simulator this session started
sim_secrets_seen: set[str] = set()
_CARD_FIELDS = {"number", "pin", "securitycode", "gan", "code", "pan", "paymentaccountuniqueid"}


def card_secrets(value: Any) -> set[str]:
    """Card numbers, codes and PINs anywhere in a simulator's `/_sim/cards` answer."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() in _CARD_FIELDS and isinstance(item, str) and len(item) >= 4:
                found.add(item)
            else:
                found |= card_secrets(item)
    elif isinstance(value, list):
        for item in value:
            found |= card_secrets(item)
    return found


@pytest.fixture(autouse=True)
def _fresh_sandbox_and_no_leaks(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Reset the simulator before each test; after it, no card number or PIN in the logs."""
    if request.node.get_closest_marker("unit"):  # no sockets, no simulator: `pytest -m unit`
        yield
        return
    sim: Sandbox = request.getfixturevalue("sandbox")
    sim.reset()
    caplog.set_level(logging.DEBUG)
    yield
    secrets: set[str] = set()
    for running in RUNNING:
        secrets |= card_secrets(running.http.get("/_sim/cards").json())
    sim_secrets_seen.update(secrets)
    # caplog.text at teardown holds only the teardown phase: gather what setup and the test logged.
    records = caplog.get_records("setup") + caplog.get_records("call")
    text = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in records)
    leaked = _leaks(text, secrets)
    assert not leaked, f"card numbers or PINs in clear in the logs: {sorted(leaked)}"


def _leaks(text: str, secrets: set[str]) -> set[str]:
    found = set()
    for secret in secrets:
        # A masked card number (`****7777`) shows its last 4 on purpose; a 4-digit PIN may be the same digits.
        if re.search(rf"(?<![0-9A-Za-z*]){re.escape(secret)}(?![0-9A-Za-z])", text, re.IGNORECASE):
            found.add(secret)
    return found


def write_config(directory: Path, providers: dict[str, Any], **top: Any) -> Path:
    """Write a gateway.yaml into ``directory`` and return its path."""
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump({**top, "providers": providers}, sort_keys=False))
    return path


def sandbox_provider(sim: Sandbox, mapping: Path = SANDBOX_MAPPING, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "mapping": str(mapping),
        "vars": {"base_url": sim.url},
        "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}},
        "inbound": "none",
    }
    entry.update(extra)
    return entry


def client_for(config: Path, **kwargs: Any) -> TestClient:
    plan, diagnostics = load(config)
    assert plan is not None, "\n".join(map(str, diagnostics))
    return TestClient(create_app(plan, **kwargs))


@pytest.fixture
def gateway(sandbox: Sandbox, tmp_path: Path) -> Iterator[TestClient]:
    """The gateway in-process on the shipped sandbox mapping, as provider `sandbox`."""
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    with client_for(config) as client:
        yield client


def webhook_records(caplog: pytest.LogCaptureFixture, count: int, *, containing: str = "",
                    timeout: float = 5.0) -> list[logging.LogRecord]:
    """The captured webhook lines (those holding ``containing``), once at least ``count`` are there.

    A webhook's line is written just after its answer is sent (README, "Logs"): a test's thread
    that has the answer may look before the server's loop has written it."""
    stop = time.monotonic() + timeout
    while True:
        found = [r for r in caplog.records if r.name == "gateway.runtime.webhook"
                 and r.getMessage().startswith('{"event":"webhook"') and containing in r.getMessage()]
        if len(found) >= count or time.monotonic() > stop:
            return found
        time.sleep(0.005)
