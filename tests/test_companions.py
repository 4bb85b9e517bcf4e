"""`gateway serve`'s companions never outlive it, and a companion that cannot start stops it.

Each test runs `gateway serve` as a process whose companion is the sandbox simulator on a free
port, and finds the companion by that port (its command line in /proc, and connecting to it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from .conftest import ROOT, SANDBOX_KEY_FILE, SANDBOX_MAPPING, write_config

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds processes through /proc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphaned zombie waits for a reaper that may never come)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _companions_on(port: int) -> list[int]:
    """Pids of sandbox processes started with `--port <port>`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"simulators.sandbox" in argv and str(port).encode() in argv and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _config(tmp: Path, sim_port: int, command: list[str] | None = None) -> Path:
    return write_config(
        tmp,
        {"sandbox": {"mapping": str(SANDBOX_MAPPING), "vars": {"base_url": f"http://127.0.0.1:{sim_port}"},
                     "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none"}},
        idempotency={"store": f"sqlite:///{tmp}/idempotency.sqlite3", "key_file": str(tmp / "idempotency.key")},
        companions=[{
            "name": "sandbox",
            "command": command or ["{python}", "-m", "simulators.sandbox", "--port", str(sim_port)],
            "ready_url": f"http://127.0.0.1:{sim_port}/_sim/health",
            "ready_timeout": 15,
        }],
    )


def _env() -> dict[str, str]:
    # The companion runs in the config's folder (tmp): it finds `simulators` through PYTHONPATH.
    return {**os.environ, "PYTHONPATH": str(ROOT)}


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, sim_port: int, log: Path) -> None:
        self.proc, self.port, self.sim_port, self.log = proc, port, sim_port, log


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`gateway serve` with the sandbox as companion, up and answering; whatever survives is killed."""
    sim_port, port = _free_port(), _free_port()
    config = _config(tmp_path, sim_port)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                 "--port", str(port)], cwd=tmp_path, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gateway serve did not start: {log.read_text()}")
            time.sleep(0.1)
        yield Served(proc, port, sim_port, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in _companions_on(sim_port):  # an orphan left by a failing test
            os.kill(pid, signal.SIGKILL)


def _gone_within(pids: list[int], port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids) and not _listening(port):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_serve_with_a_signal_stops_its_companion(served, sig):
    companions = _companions_on(served.sim_port)
    assert len(companions) == 1 and _listening(served.sim_port), "the sandbox companion is running"
    served.proc.send_signal(sig)
    status = served.proc.wait(15)
    assert _gone_within(companions, served.sim_port, 2), (
        f"the companion outlived `gateway serve` stopped by {sig.name}: {served.log.read_text()}")
    assert status == 0
    assert "Traceback" not in served.log.read_text()


def test_a_killed_serve_takes_its_companion_with_it(served):
    companions = _companions_on(served.sim_port)
    assert len(companions) == 1
    served.proc.kill()  # SIGKILL: no cleanup runs in the gateway; the kernel tells the companion
    served.proc.wait(10)
    assert _gone_within(companions, served.sim_port, 8), "a SIGKILLed gateway's companion kept running"


def test_a_companion_whose_port_is_taken_stops_serve_with_one_line(tmp_path):
    sim_port, port = _free_port(), _free_port()
    config = _config(tmp_path, sim_port)
    with socket.create_server(("127.0.0.1", sim_port)):  # something else holds the companion's port
        result = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                 "--port", str(port)], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                                timeout=20)
        assert not _listening(port), "the gateway must not serve"
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "sandbox" in lines[0] and str(sim_port) in lines[0] and "--no-companions" in lines[0], lines[0]
    assert not _companions_on(sim_port)


def test_a_companion_that_exits_before_it_is_ready_stops_serve_with_one_line(tmp_path):
    sim_port, port = _free_port(), _free_port()
    config = _config(tmp_path, sim_port, command=["{python}", "-c", "import sys; sys.exit(3)"])
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                             "--port", str(port)], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=20)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "`sandbox` exited with status 3" in lines[0] and str(sim_port) in lines[0], lines[0]
