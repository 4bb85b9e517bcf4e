"""The same response for the same idempotence_key: replays, changed bodies, unknown outcomes,
concurrent duplicates across two gateway processes, a crash mid-flight, and nothing readable at rest."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import (
    ROOT,
    SANDBOX_MAPPING,
    _leaks,
    client_for,
    sandbox_provider,
    write_config,
)
from .newstore_spec import EXAMPLES
from .stores import KINDS, TEST_KEY, raw_contents, store_url

ISSUE = EXAMPLES["issue"]


def _issue_calls(sandbox) -> list[dict]:
    return [c for c in sandbox.calls() if c["path"] == "/v1/cards"]


@pytest.fixture
def keyed_gateway(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_IDEMPOTENCY_KEY", TEST_KEY)
    url = f"sqlite:///{tmp_path / 'state' / 'idem.sqlite3'}"
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)}, idempotency={
        "store": url, "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    with client_for(config) as client:
        client.store_url = url
        yield client


def test_a_retry_gets_the_stored_response_byte_for_byte(keyed_gateway, sandbox):
    first = keyed_gateway.post("/sandbox/gift_card/issue", json=ISSUE)
    second = keyed_gateway.post("/sandbox/gift_card/issue", json=ISSUE)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert len(_issue_calls(sandbox)) == 1


def test_the_same_key_with_another_body_gets_the_stored_response(keyed_gateway, sandbox, caplog):
    first = keyed_gateway.post("/sandbox/gift_card/issue", json=ISSUE)
    changed = copy.deepcopy(ISSUE)
    changed["amount"]["value"] = 999
    second = keyed_gateway.post("/sandbox/gift_card/issue", json=changed)
    assert second.content == first.content
    assert len(_issue_calls(sandbox)) == 1
    [warning] = [r for r in caplog.records if "idempotency_body_mismatch" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "999" not in warning.getMessage() and "34683bfjbfjbdfkbfk" not in warning.getMessage()


def test_keys_are_per_provider_and_operation(keyed_gateway, sandbox):
    issue = keyed_gateway.post("/sandbox/gift_card/issue", json=ISSUE)
    deactivate = keyed_gateway.post("/sandbox/gift_card/deactivate", json={
        "card_number": issue.json()["identifier"]["number"], "idempotence_key": ISSUE["idempotence_key"]})
    assert deactivate.status_code == 200 and "deactivated_at" in deactivate.json()


def test_balance_is_never_cached(keyed_gateway, sandbox):
    body = {"identifier": {"number": "6006491111111111", "pin": "480163"}}
    keyed_gateway.post("/sandbox/gift_card/balance", json=body)
    keyed_gateway.post("/sandbox/gift_card/balance", json=body)
    assert len(sandbox.calls()) == 2


def test_a_definitive_rejection_is_replayed(keyed_gateway, sandbox):
    body = {**EXAMPLES["activate"], "card_number": "6006491111111111", "idempotence_key": "act-1"}
    first = keyed_gateway.post("/sandbox/gift_card/activate", json=body)
    assert first.status_code == 400 and first.json()["error_code"] == "card_already_active"
    second = keyed_gateway.post("/sandbox/gift_card/activate", json=body)
    assert second.content == first.content
    assert len(sandbox.calls()) == 1


def test_rejections_before_any_provider_call_are_not_stored(keyed_gateway, sandbox):
    bad = {**ISSUE, "amount": {"value": -1, "currency": "USD"}}
    assert keyed_gateway.post("/sandbox/gift_card/issue", json=bad).status_code == 400
    good = keyed_gateway.post("/sandbox/gift_card/issue", json=ISSUE)
    assert good.status_code == 200
    assert len(_issue_calls(sandbox)) == 1


def test_an_unknown_outcome_leaves_the_key_free_and_the_retry_succeeds(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_IDEMPOTENCY_KEY", TEST_KEY)
    text = SANDBOX_MAPPING.read_text().replace("timeout: 5 ", "timeout: 0.5 ")
    mapping = tmp_path / "fast.yaml"
    mapping.write_text(text)
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)}, idempotency={
        "store": f"sqlite:///{tmp_path / 'idem.sqlite3'}",
        "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    sandbox.fault("delay", seconds=1.5)
    with client_for(config) as client:
        timed_out = client.post("/sandbox/gift_card/issue", json=ISSUE)
        assert timed_out.status_code == 504 and timed_out.json()["request_accepted"] is True
        time.sleep(1.3)  # the provider finishes the first call meanwhile
        retried = client.post("/sandbox/gift_card/issue", json=ISSUE)
        again = client.post("/sandbox/gift_card/issue", json=ISSUE)
    assert retried.status_code == 200, retried.text
    assert again.content == retried.content
    calls = _issue_calls(sandbox)
    assert len(calls) == 2  # the first (timed out) and the retry; the third was replayed by the gateway
    # The provider-side key made the retry a replay at the provider: one card, not two.
    assert calls[0]["headers"]["idempotency-key"] == calls[1]["headers"]["idempotency-key"]
    issued = [c for c in sandbox.cards() if c["number"].startswith("6006497")]
    assert len(issued) == 1 and issued[0]["number"] == retried.json()["identifier"]["number"]


@pytest.mark.parametrize("kind", KINDS)
def test_stored_responses_are_sealed_at_rest(kind, sandbox, tmp_path, monkeypatch):
    url = store_url(kind, tmp_path)
    monkeypatch.setenv("GATEWAY_TEST_IDEMPOTENCY_KEY", TEST_KEY)
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)}, idempotency={
        "store": url, "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    with client_for(config) as client:
        issued = client.post("/sandbox/gift_card/issue", json=ISSUE).json()["identifier"]
        body = {**EXAMPLES["activate"], "card_number": "6006495555555554", "idempotence_key": "act-seal"}
        activated = client.post("/sandbox/gift_card/activate", json=body).json()["identifier"]
    raw = raw_contents(kind, url)
    assert raw, "the store holds the two records"
    secrets = {issued["number"], issued["pin"], activated["number"], activated["pin"]}
    assert not _leaks(raw.decode("latin-1"), secrets)
    assert ISSUE["idempotence_key"].encode() not in raw  # row keys are hashed too


# --- several processes ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """A `gateway serve` process on its own port."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "GATEWAY_TEST_IDEMPOTENCY_KEY": TEST_KEY}
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                          "--port", str(self.port), "--no-companions"],
                                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"gateway did not start: {log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)


def _config(tmp_path: Path, sandbox, url: str, **idem) -> Path:
    return write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)}, idempotency={
        "store": url, "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}], **idem})


@pytest.mark.parametrize("kind", KINDS)
def test_100_concurrent_duplicates_over_two_processes_issue_once(kind, sandbox, tmp_path):
    url = store_url(kind, tmp_path)
    config = _config(tmp_path, sandbox, url)
    log = tmp_path / "gateways.log"
    gateways = [Gateway(config, log), Gateway(config, log)]
    try:
        sandbox.fault("delay", seconds=1.0)  # the one real call stays in flight while the rest arrive

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(
                    client.post(gateways[i % 2].url + "/sandbox/gift_card/issue", json=ISSUE) for i in range(100)))

        responses = asyncio.run(burst())
    finally:
        for g in gateways:
            g.stop()
    assert {r.status_code for r in responses} == {200}, {r.text for r in responses}
    assert len({r.content for r in responses}) == 1
    assert len(_issue_calls(sandbox)) == 1
    output = log.read_text()
    replayed = output.count('"outcome":"replayed"')
    assert replayed == 99, output[-2000:]
    number = responses[0].json()["identifier"]
    assert not _leaks(output, {number["number"], number["pin"]})


# Long enough for a second gateway to start on a loaded 2-core machine before the lease runs out
# (3 s was not: the first request then found the key free and the test failed for that reason).
LEASE = 10


def test_a_gateway_killed_mid_flight_frees_the_key_after_its_lease(sandbox, tmp_path):
    url = f"sqlite:///{tmp_path / 'idem.sqlite3'}"
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, deadline=1.5)}, idempotency={
        "store": url, "lease": LEASE, "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    log = tmp_path / "gateways.log"
    first = Gateway(config, log)
    sandbox.fault("delay", seconds=1.0)
    client = httpx.Client(timeout=30)
    try:
        import threading

        threading.Thread(target=lambda: _swallow(lambda: client.post(first.url + "/sandbox/gift_card/issue", json=ISSUE)),
                         daemon=True).start()
        deadline = time.monotonic() + 10
        while not _issue_calls(sandbox) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _issue_calls(sandbox), "the provider call never started"
        killed_at = time.monotonic()
        first.stop(signal.SIGKILL)  # dies holding the key, its provider call in flight
        second = Gateway(config, log)
        try:
            # While the dead process's lease lasts, a retry waits, then gets a retryable answer:
            # never a second provider call while the first may still be running.
            early = httpx.post(second.url + "/sandbox/gift_card/issue", json=ISSUE, timeout=30)
            assert time.monotonic() < killed_at + LEASE, "the second gateway started after the lease ran out"
            assert early.status_code == 503, early.text
            assert early.json()["error_code"] == "request_in_progress"
            assert len(_issue_calls(sandbox)) == 1
            time.sleep(max(0.0, killed_at + LEASE + 0.2 - time.monotonic()))
            retry = httpx.post(second.url + "/sandbox/gift_card/issue", json=ISSUE, timeout=30)
        finally:
            second.stop()
    finally:
        client.close()
    assert retry.status_code == 200, retry.text
    issued = [c for c in sandbox.cards() if c["number"].startswith("6006497")]
    assert len(issued) == 1  # the provider-side key turned the second call into a replay
    assert issued[0]["number"] == retry.json()["identifier"]["number"]


def _swallow(fn):
    try:
        fn()
    except httpx.HTTPError:
        pass


def test_a_duplicate_that_outwaits_its_deadline_gets_a_retryable_error_not_a_second_run(sandbox, tmp_path, monkeypatch):
    import hashlib

    from gateway.runtime.idempotency import open_store

    monkeypatch.setenv("GATEWAY_TEST_IDEMPOTENCY_KEY", TEST_KEY)
    url = f"sqlite:///{tmp_path / 'idem.sqlite3'}"
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, deadline=1)}, idempotency={
        "store": url, "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    # Another instance holds the key (its request still running there).
    storage_key = hashlib.sha256(f"sandbox\0issue\0{ISSUE['idempotence_key']}".encode()).hexdigest()

    async def hold() -> None:
        store = open_store(url, tmp_path)
        await store.open()
        assert (await store.claim(storage_key, "other-instance", 60))[0] == "acquired"
        await store.close()

    asyncio.run(hold())
    with client_for(config) as client:
        started = time.monotonic()
        response = client.post("/sandbox/gift_card/issue", json=ISSUE)
        waited = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["error_code"] == "request_in_progress"
    assert response.json()["request_accepted"] is True
    assert 0.8 <= waited < 5
    assert _issue_calls(sandbox) == []


def test_a_lease_shorter_than_a_deadline_does_not_load(sandbox, tmp_path):
    from gateway.compile.gateway_file import load

    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, deadline=30)},
                          idempotency={"key_file": "k.key", "lease": 20})
    plan, diagnostics = load(config)
    assert plan is None
    assert [d.code for d in diagnostics] == ["GW048"]
    assert "must outlast the longest webhook deadline (30s)" in diagnostics[0].message
