"""Startup failures of `gateway serve` (real subprocesses): one line naming what failed and what
to do, exit status 1, no traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SANDBOX_KEY_FILE, SANDBOX_MAPPING, write_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _provider(base_url: str = "http://127.0.0.1:9") -> dict:
    return {"mapping": str(SANDBOX_MAPPING), "vars": {"base_url": base_url},
            "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none"}


def _serve(tmp: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--config", str(tmp / "gateway.yaml"),
                           "--port", str(_free_port()), "--pid-file", str(tmp / "pid"), *args],
                          cwd=tmp, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                          capture_output=True, text=True, timeout=120)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    # Each line is a JSON log line (the default format): the one that says why it stops is an
    # error whose message starts with "gateway: ".
    messages = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    lines = [m["msg"] for m in messages if m["level"] == "error" and m.get("msg", "").startswith("gateway: ")]
    assert len(lines) == 1, done.stderr
    assert all(line.startswith("{") for line in done.stderr.splitlines() if line.strip()), done.stderr
    return lines[0]


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_an_unreachable_store_stops_serve_with_one_line_naming_host_and_port(tmp_path, scheme):
    port = _free_port()  # nothing listens there
    write_config(tmp_path, {"sandbox": _provider()}, idempotency={
        "store": f"{scheme}://gw:s3cr3t-pw@127.0.0.1:{port}/7",
        "encryption_keys": [{"id": "k1", "key": {"file": "k1.key"}}]})
    (tmp_path / "k1.key").write_text("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n")
    line = _one_line(_serve(tmp_path))
    assert f"127.0.0.1:{port}" in line and "gateway.yaml:2:" in line and "idempotency.store" in line
    assert "s3cr3t-pw" not in line and ":***@" in line
    assert not (tmp_path / "pid").exists()


def test_a_taken_port_stops_serve_with_one_line(tmp_path):
    write_config(tmp_path, {"sandbox": _provider()})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line(_serve(tmp_path, "--port", str(port)))
    assert f"127.0.0.1:{port}" in line and "already in use" in line and "--port" in line


def test_a_drain_timeout_shorter_than_a_deadline_is_refused(tmp_path):
    write_config(tmp_path, {"sandbox": {**_provider(), "deadline": 30}})
    line = _one_line(_serve(tmp_path, "--drain-timeout", "10"))
    assert "--drain-timeout 10" in line and "30s" in line


def test_a_companion_that_cannot_start_stops_serve_with_one_line(tmp_path):
    write_config(tmp_path, {"sandbox": _provider()},
                 companions=[{"name": "sim", "command": ["/nonexistent/simulator"]}])
    line = _one_line(_serve(tmp_path))
    assert "companion `sim`" in line and "/nonexistent/simulator" in line


def test_flags_come_from_gateway_environment_variables(tmp_path):
    write_config(tmp_path, {"sandbox": {**_provider(), "deadline": 30}})
    line = _one_line(_serve(tmp_path, env={"GATEWAY_DRAIN_TIMEOUT": "12"}))
    assert "--drain-timeout 12" in line
    done = _serve(tmp_path, env={"GATEWAY_WORKERS": "two"})
    assert done.returncode == 2 and "GATEWAY_WORKERS='two'" in done.stderr


def test_a_store_failing_in_a_workers_lifespan_reaches_uvicorn_as_one_line(tmp_path):
    """The race the pre-check cannot close: the store goes away before a worker starts."""
    import asyncio

    from gateway.compile.gateway_file import load
    from gateway.http.app import create_app
    from gateway.http.startup import one_line_startup_failures

    port = _free_port()
    config = write_config(tmp_path, {"sandbox": _provider()}, idempotency={
        "store": f"redis://127.0.0.1:{port}/0", "encryption_keys": [{"id": "k1", "key": {"file": "k1.key"}}]})
    (tmp_path / "k1.key").write_text("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n")
    plan, _ = load(config)
    app = one_line_startup_failures(create_app(plan), plan)
    sent: list[dict] = []

    async def lifespan() -> None:
        queue: asyncio.Queue = asyncio.Queue()
        await queue.put({"type": "lifespan.startup"})

        async def send(message: dict) -> None:
            sent.append(message)

        with pytest.raises(Exception):
            await app({"type": "lifespan", "asgi": {"version": "3.0"}}, queue.get, send)

    asyncio.run(lifespan())
    (failed,) = [m for m in sent if m["type"] == "lifespan.startup.failed"]
    assert "\n" not in failed["message"] and f"127.0.0.1:{port}" in failed["message"]
    assert "cannot open the idempotency store" in failed["message"]


def _lint(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "lint", "--config", str(tmp / "gateway.yaml"), *args],
                          cwd=tmp, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)


def test_lint_online_warns_at_the_store_that_does_not_answer(tmp_path):
    """`gateway lint` passes a config whose store is down (CI may not reach it); `--online` opens
    it as serve would and warns at `idempotency.store`, password masked; `--strict` fails on it."""
    port = _free_port()  # nothing listens there
    write_config(tmp_path, {"sandbox": _provider()}, idempotency={
        "store": f"redis://gw:s3cr3t-pw@127.0.0.1:{port}/7",
        "encryption_keys": [{"id": "k1", "key": {"file": "k1.key"}}]})
    (tmp_path / "k1.key").write_text("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n")
    offline = _lint(tmp_path)
    assert offline.returncode == 0 and "GW048" not in offline.stdout, offline.stdout
    online = _lint(tmp_path, "--online")
    assert online.returncode == 0, online.stdout + online.stderr
    (line,) = [line for line in online.stdout.splitlines() if "GW048" in line]
    assert line.startswith("gateway.yaml:2:10: GW048 cannot open the idempotency store "), line
    assert f"127.0.0.1:{port}" in line and "s3cr3t-pw" not in line and line.endswith("(at idempotency.store) [warning]")
    assert _lint(tmp_path, "--online", "--strict").returncode == 1


def test_lint_online_is_quiet_when_the_store_answers(tmp_path):
    from .stores import REDIS_URL, require

    require("redis")
    write_config(tmp_path, {"sandbox": _provider()}, idempotency={
        "store": REDIS_URL, "encryption_keys": [{"id": "k1", "key": {"file": "k1.key"}}]})
    (tmp_path / "k1.key").write_text("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n")
    online = _lint(tmp_path, "--online", "--strict")
    assert online.returncode == 0, online.stdout + online.stderr
    assert "GW048" not in online.stdout


# --- what startup loads ----------------------------------------------------------------------------

_STARTED = r'''
import asyncio, os, sys
from gateway.http import serve
os.environ["GATEWAY_CONFIG"] = sys.argv[1]
app = serve.app_from_environment()

async def main():
    lifespan = asyncio.Queue()
    await lifespan.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def said(message):
        if message["type"] == "lifespan.startup.complete":
            started.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan.get, said))
    await started.wait()
    answers = []
    for method, path, body in [("POST", "/sandbox/gift_card/balance", b'{"identifier": {"number": "6006491111111111"}}'),
                               ("GET", "/health", b""), ("GET", "/nowhere", b""), ("GET", "/sandbox/gift_card/balance", b"")]:
        sent = []
        async def receive(body=body):
            return {"type": "http.request", "body": body, "more_body": False}
        async def send(message):
            sent.append(message)
        await app({"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
                   "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "state": {},
                   "headers": [(b"content-type", b"application/json"), (b"host", b"gw")],
                   "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}, receive, send)
        answers.append(sent[0]["status"])
    await lifespan.put({"type": "lifespan.shutdown"})
    await task
    print(answers)
    print(" ".join(sorted(sys.modules)))

asyncio.run(main())
'''


def test_startup_and_the_first_requests_load_no_library_the_gateway_does_not_use(tmp_path):
    """What `gateway serve` imports is most of its startup (docs/performance.md, round 5). It never
    loads aiohttp (wire.py carries provider requests), nor anyio's asyncio backend, which
    Litestar's event emitter would start (the gateway has no events), neither at startup nor
    when its first requests are answered (then that request would pay for it)."""
    config = write_config(tmp_path, {"sandbox": _provider()})
    done = subprocess.run([sys.executable, "-c", _STARTED, str(config)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr
    answers, modules = done.stdout.splitlines()[-2:]
    assert answers == "[502, 200, 404, 405]"  # the provider is unreachable: 502, after a real attempt
    loaded = set(modules.split())
    assert "gateway.runtime.upstream.wire" in loaded
    assert not {"aiohttp", "anyio._backends._asyncio"} & loaded
