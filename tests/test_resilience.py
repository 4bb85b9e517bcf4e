"""Retries where they are safe, within the deadline, and the circuit breaker per provider, over
real HTTP against the sandbox simulator (its fault queue: delays and 5xx for the next N calls).

Assertions are on what the provider saw (the simulator's call log) and on the breaker's state,
never on durations: a wait for the breaker's cool-down only waits longer than it.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
from pathlib import Path
from typing import Any

import httpx

from gateway import contracts
from gateway.compile.gateway_file import load
from gateway.observe import metrics
from gateway.plan import GatewayPlan
from gateway.runtime.lifecycle import Runtime, running
from gateway.runtime.webhook import handle
from gateway.tools.render import render

from .conftest import SANDBOX_MAPPING, client_for, sandbox_provider, write_config
from .newstore_spec import EXAMPLES, check_error

BALANCE = {"identifier": {"number": "6006491111111111", "pin": "480163"}}
FAST = "{attempts: 3, backoff: 0.01, max_backoff: 0.02}"


def variant(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = SANDBOX_MAPPING.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "variant.yaml"
    path.write_text(text)
    return path


def step_retry(name: str, policy: str = FAST, *extra: str) -> tuple[str, str]:
    """Give step `name` a retry policy (and any other fields)."""
    lines = "".join(f"        {line}\n" for line in (f"retry: {policy}", *extra))
    return (f"      - name: {name}\n", f"      - name: {name}\n{lines}")


def mapping_retry(policy: str = FAST) -> tuple[str, str]:
    return ("timeout: 5 ", f"retry: {policy}\ntimeout: 5 ")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RefuseFirst(httpx.AsyncBaseTransport):
    """The first ``n`` requests go to a port nothing listens on, so the kernel refuses the
    connection (a real refusal, nothing sent); the rest go to the provider."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.refused = 0
        self.inner = httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left > 0:
            self.left -= 1
            self.refused += 1
            request.url = request.url.copy_with(port=_closed_port())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- retries ------------------------------------------------------------------------------------


def test_a_balance_step_marked_for_retry_succeeds_after_transient_5xx(sandbox, tmp_path):
    mapping = variant(tmp_path, step_retry("lookup"))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    sandbox.fault("status", status=503, times=2)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 50.00, "currency": "USD"}
    assert len(sandbox.calls()) == 3


def test_without_retry_a_transient_5xx_is_answered_as_before(sandbox, tmp_path):
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    sandbox.fault("status", status=503, times=2)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 502
    assert response.json()["error_code"] == "provider_error"
    assert len(sandbox.calls()) == 1


def test_an_issue_step_not_marked_idempotent_is_not_retried_after_a_timeout(sandbox, tmp_path):
    mapping = variant(tmp_path, mapping_retry(), ("timeout: 5 ", "timeout: 0.3 "))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    sandbox.fault("delay", seconds=1.5)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 504
    payload = response.json()
    check_error(payload)
    assert payload["error_code"] == "provider_timeout"
    assert payload["request_accepted"] is True
    assert len(sandbox.calls()) == 1


def test_an_issue_step_not_marked_idempotent_is_not_retried_after_a_5xx(sandbox, tmp_path):
    mapping = variant(tmp_path, mapping_retry())
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    sandbox.fault("status", status=500, times=2)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 502
    assert response.json()["error_code"] == "provider_error"
    assert response.json()["request_accepted"] is True
    assert len(sandbox.calls()) == 1


def test_an_issue_step_marked_idempotent_is_retried_after_a_timeout_with_the_same_key(sandbox, tmp_path):
    # The sandbox mapping sends a provider Idempotency-Key derived from NewStore's: a repeat is safe.
    mapping = variant(tmp_path, step_retry("create", FAST, "idempotent: true"), ("timeout: 5 ", "timeout: 0.3 "))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    sandbox.fault("delay", seconds=1.5)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 200, response.text
    calls = sandbox.calls()
    assert len(calls) == 2
    keys = {c["headers"]["idempotency-key"] for c in calls}
    assert len(keys) == 1  # the very same request, so the provider recognises the repeat


def test_a_refused_connection_is_retried_for_any_step(sandbox, tmp_path):
    mapping = variant(tmp_path, step_retry("create"))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    transport = RefuseFirst(2)
    with client_for(config, transport_factory=lambda provider: transport) as client:
        response = client.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 200, response.text
    assert transport.refused == 2
    assert len(sandbox.calls()) == 1  # only the third try reached the provider


def test_refused_every_time_is_unreachable_and_nothing_was_sent(sandbox, tmp_path):
    mapping = variant(tmp_path, step_retry("create"))
    entry = sandbox_provider(sandbox, mapping)
    entry["vars"]["base_url"] = f"http://127.0.0.1:{_closed_port()}"
    config = write_config(tmp_path, {"sandbox": entry})
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 502
    assert response.json()["error_code"] == "provider_unreachable"
    assert response.json()["request_accepted"] is False


def test_a_timeout_then_a_refusal_still_says_the_request_may_have_been_accepted(sandbox, tmp_path):
    # Try 1 times out (it may have reached the provider), try 2 is refused: the outcome is unknown.
    mapping = variant(tmp_path, step_retry("lookup", "{attempts: 2, backoff: 0.01, max_backoff: 0.02}"),
                      ("timeout: 5 ", "timeout: 0.3 "))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    sandbox.fault("delay", seconds=1.5)

    class TimeoutThenRefuse(RefuseFirst):
        """The first request goes to the (delayed) sandbox, the second is refused."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.left, self.seen = (1 if getattr(self, "seen", 0) == 1 else 0), getattr(self, "seen", 0) + 1
            return await super().handle_async_request(request)

    transport = TimeoutThenRefuse(0)
    with client_for(config, transport_factory=lambda provider: transport) as client:
        response = client.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 502
    assert response.json()["error_code"] == "provider_unreachable"
    assert response.json()["request_accepted"] is True
    assert transport.refused == 1
    assert len(sandbox.calls()) == 1


def test_an_error_rule_s_definitive_answer_is_never_retried(sandbox, tmp_path):
    mapping = variant(tmp_path, step_retry("lookup"))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/balance", json={"identifier": {"number": "6006491111111111", "pin": "000000"}})
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_pin"
    assert len(sandbox.calls()) == 1


def test_a_rate_limit_is_retried_for_an_idempotent_step(sandbox, tmp_path):
    mapping = variant(tmp_path, step_retry("lookup"))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    sandbox.fault("status", status=429)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 200, response.text
    assert len(sandbox.calls()) == 2


def test_retries_stop_at_the_deadline(sandbox, tmp_path):
    # Ten tries of 0.3 s each do not fit in a 1.5 s deadline: the retries stop there.
    mapping = variant(tmp_path, step_retry("lookup", "{attempts: 10, backoff: 0.05, max_backoff: 0.1}"),
                      ("timeout: 5 ", "timeout: 0.3 "))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping, deadline=1.5)})
    sandbox.fault("delay", seconds=3, times=10)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 504
    payload = response.json()
    check_error(payload)
    assert payload["error_code"] in ("gateway_deadline_exceeded", "provider_timeout")
    assert payload["request_accepted"] is True
    assert 2 <= len(sandbox.calls()) < 10


def test_render_send_shows_each_try(sandbox, tmp_path):
    mapping = variant(tmp_path, step_retry("lookup"))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    plan, diagnostics = load(config)
    assert plan is not None, diagnostics
    sandbox.fault("status", status=503, times=1)
    out = io.StringIO()
    assert render(plan, "sandbox", "balance", json.dumps(BALANCE).encode(), send=True, out=out) == 0
    text = out.getvalue()
    assert "  -> HTTP 503\n" in text
    assert "  try 1 of 3 failed: provider_error (HTTP 503; the step is idempotent); tried again in " in text
    assert text.index("-> HTTP 503") < text.index("try 1 of 3") < text.index("-> HTTP 200")
    assert "NewStore gets HTTP 200" in text


# --- the circuit breaker ------------------------------------------------------------------------


async def webhook(rt: Runtime, operation: str, body: dict[str, Any], *, contract: str = "gift_card",
                  path: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    async def read() -> bytes:
        return json.dumps(body).encode()

    status, content = await handle(rt, {"content-type": "application/json"}, read, contract, "sandbox", operation, path)
    return status, json.loads(content)


def breaker_plan(sandbox, tmp_path: Path, **breaker: Any) -> GatewayPlan:
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, breaker=breaker)})
    plan, diagnostics = load(config)
    assert plan is not None, diagnostics
    return plan


def test_the_breaker_opens_answers_at_once_then_half_opens_and_closes(sandbox, tmp_path):
    # (a cool-down long enough that a loaded machine does not end it before the fourth webhook)
    plan = breaker_plan(sandbox, tmp_path, failures=3, cooldown=1.5)

    async def scenario() -> None:
        async with running(plan) as rt:
            breaker = rt.breakers()["sandbox"]
            changes: list[str] = []
            breaker.subscribe(lambda provider, state: changes.append(f"{provider}:{state}"))
            assert breaker.state == "closed"
            sandbox.fault("status", status=500, times=3)
            for _ in range(3):
                status, body = await webhook(rt, "balance", BALANCE)
                assert (status, body["error_code"]) == (502, "provider_error")
            assert breaker.state == "open"
            assert len(sandbox.calls()) == 3
            assert 'gateway_upstream_breaker_state{provider="sandbox"} 2.0' in metrics.exposition()[0].decode()

            status, body = await webhook(rt, "balance", BALANCE)
            check_error(body)
            assert status == 503
            assert body["error_code"] == "provider_unavailable"
            assert body["request_accepted"] is False
            assert len(sandbox.calls()) == 3  # nothing sent

            await asyncio.sleep(1.7)  # longer than the cool-down
            assert breaker.state == "half_open"
            status, body = await webhook(rt, "balance", BALANCE)
            assert (status, body) == (200, {"value": 50.00, "currency": "USD"})
            assert breaker.state == "closed"
            assert len(sandbox.calls()) == 4
            assert changes == ["sandbox:open", "sandbox:half_open", "sandbox:closed"]

    asyncio.run(scenario())


def test_a_failed_trial_call_opens_the_breaker_again(sandbox, tmp_path):
    plan = breaker_plan(sandbox, tmp_path, failures=2, cooldown=0.3)

    async def scenario() -> None:
        async with running(plan) as rt:
            breaker = rt.breakers()["sandbox"]
            sandbox.fault("status", status=502, times=3)
            for _ in range(2):
                await webhook(rt, "balance", BALANCE)
            assert breaker.state == "open"
            await asyncio.sleep(0.5)
            status, body = await webhook(rt, "balance", BALANCE)  # the trial call: 502 again
            assert (status, body["error_code"]) == (502, "provider_error")
            assert breaker.state == "open"
            status, body = await webhook(rt, "balance", BALANCE)
            assert (status, body["error_code"]) == (503, "provider_unavailable")
            assert len(sandbox.calls()) == 3

    asyncio.run(scenario())


def test_rejections_and_timeouts_count_differently(sandbox, tmp_path):
    # Definitive 4xx/200 refusals show a live provider: they never open the breaker.
    plan = breaker_plan(sandbox, tmp_path, failures=2, cooldown=60)

    async def scenario() -> None:
        async with running(plan) as rt:
            breaker = rt.breakers()["sandbox"]
            for _ in range(4):
                status, body = await webhook(rt, "balance", {"identifier": {"number": "6006490000000000", "pin": "1"}})
                assert (status, body["error_code"]) == (400, "card_not_found")
            assert breaker.state == "closed"

    asyncio.run(scenario())


def test_a_payment_operation_gets_a_retryable_answer_while_the_breaker_is_open(sandbox, tmp_path):
    plan = breaker_plan(sandbox, tmp_path, failures=1, cooldown=60)

    async def scenario() -> None:
        async with running(plan) as rt:
            sandbox.fault("status", status=503)
            await webhook(rt, "balance", BALANCE)
            assert rt.breakers()["sandbox"].state == "open"
            status, body = await webhook(rt, "create_instrument", dict(contracts.EXAMPLES["create_instrument"]), contract="payment")
            assert status == 500  # NewStore retries a 500 with the same idempotency key
            assert body["error_code"] == "retry_error"
            assert body["details"]["gateway_error"] == "provider_unavailable"
            assert len(sandbox.calls()) == 1

    asyncio.run(scenario())


def test_a_breaker_can_be_turned_off(sandbox, tmp_path):
    plan = breaker_plan(sandbox, tmp_path, enabled=False)
    assert plan.providers["sandbox"].breaker is None

    async def scenario() -> None:
        async with running(plan) as rt:
            assert rt.breakers() == {}
            sandbox.fault("status", status=500, times=6)
            for _ in range(6):
                status, _ = await webhook(rt, "balance", BALANCE)
                assert status == 502
            assert len(sandbox.calls()) == 6

    asyncio.run(scenario())


def test_the_default_breaker_is_on(sandbox, tmp_path):
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    plan, _ = load(config)
    assert plan is not None
    breaker = plan.providers["sandbox"].breaker
    assert breaker is not None and (breaker.failures, breaker.cooldown) == (5, 30.0)
