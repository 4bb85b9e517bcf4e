"""Log lines and request ids: what an operator reads, over real HTTP where it matters.

In-process (the app under Litestar's test client): X-Request-ID kept, replaced or made, echoed on
every answer and present in the webhook's line; a mapping sending it upstream; the two defects of
the operator's review (a body mismatch naming no provider; a replayed issue logging a null card).
As a process (`gateway serve`): every line on stderr, uvicorn's and a companion's included, is
one JSON object with ts, level, pid and logger, and the webhook's line carries the echoed id.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.runtime.upstream.client import USER_AGENT

from .conftest import (
    ROOT,
    SANDBOX_KEY_FILE,
    SANDBOX_MAPPING,
    client_for,
    sandbox_provider,
    webhook_records,
    write_config,
)
from .newstore_spec import EXAMPLES
from .stores import TEST_KEY

BALANCE = {"identifier": {"number": "6006491111111111", "pin": "480163"}}
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _webhook_lines(caplog, count: int) -> list[dict]:
    return [json.loads(r.getMessage()) for r in webhook_records(caplog, count)]


def test_a_sane_request_id_is_kept_echoed_and_logged(gateway, caplog):
    response = gateway.post("/sandbox/gift_card/balance", json=BALANCE, headers={"X-Request-ID": "lb-7f3a:42/x"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "lb-7f3a:42/x"
    [line] = _webhook_lines(caplog, 1)
    assert line["request_id"] == "lb-7f3a:42/x" and line["provider"] == "sandbox" and line["operation"] == "balance"


@pytest.mark.parametrize("sent, reason", [
    ("has a space", "not printable ASCII without spaces"),
    ("x" * 129, "longer than 128 characters (129)"),
    ("caf\u00e9", "not printable ASCII without spaces"),
])
def test_an_unusable_request_id_is_replaced_and_the_replacement_logged(gateway, caplog, sent, reason):
    response = gateway.post("/sandbox/gift_card/balance", json=BALANCE,
                            headers=[("X-Request-ID", sent.encode("utf-8"))])
    made = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    [replaced] = [r for r in caplog.records if "request_id_replaced" in r.getMessage()]
    assert replaced.levelno == logging.WARNING and json.loads(replaced.getMessage())["reason"] == reason
    assert sent not in caplog.text  # why, never what was received
    assert _webhook_lines(caplog, 1)[0]["request_id"] == made


def test_every_answer_carries_a_request_id(gateway):
    made = set()
    for response in (gateway.post("/sandbox/gift_card/balance", json=BALANCE),       # a webhook
                     gateway.post("/sandbox/gift_card/balance", content=b"{"),       # its 400
                     gateway.post("/nowhere", json={}),                               # a 404
                     gateway.get("/sandbox/gift_card/balance"),                       # a 405
                     gateway.get("/health")):
        made.add(response.headers["x-request-id"])
    assert len(made) == 5 and all(re.fullmatch(r"[0-9a-f]{32}", m) for m in made)
    assert gateway.post("/nowhere", json={}, headers={"X-Request-ID": "abc"}).headers["x-request-id"] == "abc"


def test_a_mapping_can_send_the_request_id_upstream_and_the_user_agent_is_the_gateways(sandbox, tmp_path):
    text = SANDBOX_MAPPING.read_text()
    assert "headers:\n  Accept: application/json\n" in text
    mapping = tmp_path / "with_request_id.yaml"
    mapping.write_text(text.replace("headers:\n  Accept: application/json\n",
                                    'headers:\n  Accept: application/json\n  X-Correlation-ID: "{{ request_id }}"\n'))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    with client_for(config) as client:  # loads (and so lints) clean: `request_id` is a known name
        assert client.post("/sandbox/gift_card/balance", json=BALANCE, headers={"X-Request-ID": "req-1"}).status_code == 200
        made = client.post("/sandbox/gift_card/balance", json=BALANCE).headers["x-request-id"]
    first, second = [{k.lower(): v for k, v in c["headers"].items()} for c in sandbox.calls()]
    assert first["x-correlation-id"] == "req-1" and second["x-correlation-id"] == made
    assert first["user-agent"] == USER_AGENT and re.fullmatch(r"newstore-gift-card-gateway/\d+\.\d+\.\d+\S*", USER_AGENT)


def test_a_mappings_own_user_agent_wins(sandbox, tmp_path):
    mapping = tmp_path / "ua.yaml"
    mapping.write_text(SANDBOX_MAPPING.read_text().replace(
        "headers:\n  Accept: application/json\n", "headers:\n  Accept: application/json\n  user-agent: acme-adapter/2\n"))
    with client_for(write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})) as client:
        assert client.post("/sandbox/gift_card/balance", json=BALANCE).status_code == 200
    [call] = sandbox.calls()
    assert [v for k, v in call["headers"].items() if k.lower() == "user-agent"] == ["acme-adapter/2"]


@pytest.fixture
def keyed_gateway(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_IDEMPOTENCY_KEY", TEST_KEY)
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)}, idempotency={
        "store": f"sqlite:///{tmp_path / 'idem.sqlite3'}",
        "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    with client_for(config) as client:
        yield client


def test_a_replayed_issue_logs_the_stored_card_masked(keyed_gateway, caplog):
    first = keyed_gateway.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    again = keyed_gateway.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    number = first.json()["identifier"]["number"]
    assert again.content == first.content
    ran, replayed = _webhook_lines(caplog, 2)
    assert replayed["outcome"] == "replayed"
    assert ran["card"] == replayed["card"] == "****" + number[-4:]


def test_a_body_mismatch_names_provider_operation_and_request(keyed_gateway, caplog):
    keyed_gateway.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    changed = copy.deepcopy(EXAMPLES["issue"])
    changed["amount"]["value"] = 999
    keyed_gateway.post("/sandbox/gift_card/issue", json=changed, headers={"X-Request-ID": "retry-2"})
    [warning] = [json.loads(r.getMessage()) for r in caplog.records if "idempotency_body_mismatch" in r.getMessage()]
    assert warning["provider"] == "sandbox" and warning["operation"] == "issue"
    assert set(warning) == {"event", "provider", "operation", "stored", "received"}  # fingerprints, no bodies


# --- `gateway serve` as a process ------------------------------------------------------------

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path: Path, *extra: str, companion_port: int | None = None, keep_otel: bool = False):
    sim_port = companion_port or _free_port()
    config = write_config(
        tmp_path,
        {"sandbox": {"mapping": str(SANDBOX_MAPPING), "vars": {"base_url": f"http://127.0.0.1:{sim_port}"},
                     "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none"}},
        companions=[{"name": "sandbox", "command": ["{python}", "-m", "simulators.sandbox", "--port", str(sim_port)],
                     "ready_url": f"http://127.0.0.1:{sim_port}/_sim/health", "ready_timeout": 15}],
    )
    port = _free_port()
    err = (tmp_path / "stderr.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in [n for n in env if n.startswith("OTEL_") and not keep_otel]:
        del env[name]
    proc = subprocess.Popen(GATEWAY + ["serve", "--config", str(config), "--port", str(port), *extra],
                            cwd=tmp_path, stdout=err, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/health", timeout=1)
            return proc, base, tmp_path / "stderr.log"
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise AssertionError((tmp_path / "stderr.log").read_text())


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(30)


def test_serve_prints_only_json_lines_uvicorns_and_companions_included(tmp_path):
    proc, base, log = _serve(tmp_path, "--access-log")
    try:
        response = httpx.post(base + "/sandbox/gift_card/balance", json=BALANCE, headers={"X-Request-ID": "op-review-1"})
        missing = httpx.post(base + "/nowhere", json={})
    finally:
        _stop(proc)
    assert response.status_code == 200 and response.headers["x-request-id"] == "op-review-1"
    assert re.fullmatch(r"[0-9a-f]{32}", missing.headers["x-request-id"])
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every line is JSON, or this fails
    for line in lines:
        assert list(line)[:4] == ["ts", "level", "pid", "logger"] and TS.fullmatch(line["ts"]), line
        assert ("event" in line) != ("msg" in line), line
    by_logger = {line["logger"] for line in lines}
    assert {"uvicorn.error", "uvicorn.access", "gateway.runtime.webhook", "gateway.companion.sandbox"} <= by_logger
    assert any("Application startup complete" in line.get("msg", "") for line in lines)
    [webhook] = [line for line in lines if line.get("event") == "webhook"]
    assert webhook["request_id"] == "op-review-1" and webhook["pid"] == proc.pid  # one worker: the serve process
    assert (webhook["provider"], webhook["operation"], webhook["status"], webhook["card"]) == ("sandbox", "balance", 200, "****1111")
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    seen = {(a["method"], a["path"], a["status"], a["request_id"]) for a in access}
    assert ("POST", "/sandbox/gift_card/balance", 200, "op-review-1") in seen
    assert ("POST", "/nowhere", 404, missing.headers["x-request-id"]) in seen
    assert "6006491111111111" not in log.read_text() and "480163" not in log.read_text()


def test_serve_text_format_is_one_readable_line_per_event(tmp_path):
    proc, base, log = _serve(tmp_path, "--log-format", "text")
    try:
        httpx.post(base + "/sandbox/gift_card/balance", json=BALANCE, headers={"X-Request-ID": "dev-1"})
    finally:
        _stop(proc)
    text = log.read_text()
    [line] = [line for line in text.splitlines() if " webhook " in line]
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z INFO +gateway\.runtime\.webhook \[dev-1 sandbox/balance\] webhook ", line)
    assert "outcome=ok" in line and "status=200" in line and "card=****1111" in line
    assert not any(line.startswith("{") for line in text.splitlines())
    assert "uvicorn.access" not in text  # no access line without --access-log (the webhook line says more)


def test_the_webhook_line_is_written_once_the_answer_has_gone_out(sandbox, tmp_path):
    """NewStore does not wait for the log line: it is written right after the answer's bytes are
    handed over (the same turn of the loop), and still names the request it belongs to."""
    import asyncio
    import io

    from gateway import logs
    from gateway.observe import logformat

    events: list[tuple[str, str]] = []

    class Stream(io.StringIO):  # no file descriptor: the line comes through write()
        def write(self, text: str) -> int:
            events.append(("log", text))
            return len(text)

    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    with client_for(config) as client:
        app = client.app
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logformat.configure("INFO", "json")
    root.handlers[0].setStream(Stream())
    body = json.dumps(BALANCE).encode()

    async def one() -> None:
        inbox: asyncio.Queue = asyncio.Queue()
        outbox: asyncio.Queue = asyncio.Queue()
        lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            events.append(("send", message["type"]))

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/sandbox/gift_card/balance", "raw_path": b"/sandbox/gift_card/balance",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
                 "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"order-1")], "state": {}}
        try:
            await app(scope, receive, send)
            answered = list(events)
            await asyncio.sleep(0)  # the loop's next turn
            assert answered == [("send", "http.response.start"), ("send", "http.response.body")]
        finally:
            await inbox.put({"type": "lifespan.shutdown"})
            await outbox.get()
            await lifespan

    try:
        asyncio.run(one())
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        logs.write_directly(None)
    lines = [json.loads(text) for kind, text in events if kind == "log" and '"event":"webhook"' in text]
    assert [kind for kind, text in events if kind == "send" or '"event":"webhook"' in text] == ["send", "send", "log"]
    [line] = lines
    assert line["request_id"] == "order-1" and line["status"] == 200 and line["card"] == "****1111"
