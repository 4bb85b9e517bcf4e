"""Provider answers that are not successes: definitive rejections mapped by the mapping's error
rules, and unknown outcomes (down, timed out, 5xx, garbage) that must never claim
``request_accepted: false`` once a request may have reached the provider."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .conftest import SANDBOX_MAPPING, client_for, sandbox_provider, write_config
from .newstore_spec import EXAMPLES, check_error

BALANCE = {"identifier": {"number": "6006491111111111", "pin": "480163"}}


def variant(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of the sandbox mapping with some text replaced (e.g. a shorter timeout)."""
    text = SANDBOX_MAPPING.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "variant.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("operation", "body", "code", "message"),
    [
        ("balance", {"identifier": {"number": "6006490000000000", "pin": "1"}}, "card_not_found", "The gift card does not exist."),
        ("balance", {"identifier": {"number": "6006491111111111", "pin": "000000"}}, "invalid_pin", "The PIN is wrong."),
        ("balance", {"identifier": {"number": "6006491111111111"}}, "invalid_pin", "The PIN is wrong."),
        ("balance", {"identifier": {"number": "6006494444444444", "pin": "602718"}}, "card_inactive", "The gift card has been deactivated."),
        ("balance", {"identifier": {"number": "6006495555555551", "pin": "710551"}}, "card_inactive", "The gift card has not been activated yet."),
        ("activate", {**EXAMPLES["activate"], "card_number": "6006491111111111"}, "card_already_active", "The gift card is already active."),
        ("activate", {**EXAMPLES["activate"], "card_number": "6006495555555552", "amount": {"value": 5, "currency": "EUR"}},
         "currency_mismatch", "The gift card holds another currency."),
        ("deactivate", {"card_number": "6006494444444444"}, "card_inactive", "The gift card has been deactivated."),
        ("deactivate", {"card_number": "6006491111111111", "pin": "999999"}, "invalid_pin", "The PIN is wrong."),
        ("deactivate", {"card_number": "6006490000000000"}, "card_not_found", "The gift card does not exist."),
    ],
)
def test_definitive_rejections_follow_the_error_rules(gateway, sandbox, operation, body, code, message):
    response = gateway.post(f"/sandbox/gift_card/{operation}", json=body)
    assert response.status_code == 400, response.text
    payload = response.json()
    check_error(payload)
    assert payload["error_code"] == code
    assert payload["message"] == message
    assert payload["request_accepted"] is False
    assert payload["details"]["upstream_status"] in (200, 404)
    assert len(sandbox.calls()) == 1


def test_a_refusal_without_its_own_rule_falls_to_the_generic_rule_with_details(sandbox, tmp_path):
    # Remove the activate step's own `currency_mismatch` rule: the mapping-level catch-all applies.
    mapping = variant(tmp_path, ("match: \"refusal.code == 'currency_mismatch'\"", "match: \"refusal.code == 'never'\""))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    body = {**EXAMPLES["activate"], "card_number": "6006495555555552", "amount": {"value": 5, "currency": "EUR"}}
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/activate", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "provider_refused",
        "message": "The provider refused the request (currency_mismatch).",
        "request_accepted": False,
        "details": {"step": "activate", "upstream_status": 200, "provider_code": "currency_mismatch"},
    }


def test_rate_limit_is_a_retryable_503(gateway, sandbox):
    sandbox.fault("status", status=429)
    response = gateway.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 503
    assert response.json() == {
        "error_code": "rate_limit",
        "message": "The provider is rate limiting requests; retry later.",
        "request_accepted": False,
        "details": {"step": "lookup", "upstream_status": 429},
    }


def test_provider_5xx_is_502_with_outcome_unknown(gateway, sandbox):
    sandbox.fault("status", status=503)
    response = gateway.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 502
    payload = response.json()
    check_error(payload)
    assert payload["error_code"] == "provider_error"
    assert payload["request_accepted"] is True
    assert payload["details"] == {"step": "create", "upstream_status": 503}


def test_garbage_body_is_502_bad_response(gateway, sandbox):
    sandbox.fault("garbage")
    response = gateway.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 502
    assert response.json()["error_code"] == "provider_bad_response"
    assert response.json()["request_accepted"] is True
    assert "not valid JSON" in response.json()["message"]


def test_provider_credentials_rejected(sandbox, tmp_path):
    wrong = tmp_path / "wrong.key"
    wrong.write_text("sk_wrong")
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, secrets={"api_key": {"file": str(wrong)}})})
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 400
    assert response.json()["error_code"] == "provider_auth_failed"
    assert "sk_wrong" not in response.text


def test_provider_timeout_is_504_and_never_request_accepted_false(sandbox, tmp_path):
    mapping = variant(tmp_path, ("timeout: 5 ", "timeout: 0.3 "))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    sandbox.fault("delay", seconds=1.5)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 504
    payload = response.json()
    check_error(payload)
    assert payload["error_code"] == "provider_timeout"
    assert payload["request_accepted"] is True
    assert payload["message"] == "step `create`: the provider did not answer within 0.3s; the outcome is unknown"
    assert len(sandbox.calls()) == 1


def test_webhook_deadline_cuts_a_slow_provider(sandbox, tmp_path):
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, deadline=0.5)})
    sandbox.fault("delay", seconds=2)
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 504
    assert response.json() == {
        "error_code": "gateway_deadline_exceeded",
        "message": "the webhook did not finish within its 0.5s deadline (in step `create`); the outcome is unknown",
        "request_accepted": True,
        "details": {"step": "create"},
    }


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_provider_down_is_502_and_nothing_was_sent(sandbox, tmp_path):
    entry = sandbox_provider(sandbox)
    entry["vars"]["base_url"] = f"http://127.0.0.1:{_closed_port()}"
    config = write_config(tmp_path, {"sandbox": entry})
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 502
    payload = response.json()
    assert payload["error_code"] == "provider_unreachable"
    # Connection refused: the request certainly did not reach the provider.
    assert payload["request_accepted"] is False
    assert payload["message"] == "step `create`: cannot connect to the provider (ConnectError)"


def test_a_mapping_that_renders_an_invalid_response_is_a_named_gateway_error(sandbox, tmp_path):
    mapping = variant(tmp_path, ('currency: "{{ steps.lookup.currency }}"', 'currency: "{{ steps.lookup.currency | lower }}x"'))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 502
    payload = response.json()
    check_error(payload)
    assert payload["error_code"] == "mapping_error"
    assert payload["request_accepted"] is True
    assert payload["message"].startswith("mapping `") and "variant.yaml`" in payload["message"]
    assert "operation `balance`, response: the response does not match NewStore's `balance` response" in payload["message"]
    assert "`$.currency`" in payload["message"]
    assert payload["details"]["operation"] == "balance"
    assert "Traceback" not in response.text


def test_a_template_failing_at_run_time_names_file_step_and_line(sandbox, tmp_path):
    # Passes the load-time checks (metadata is free-form) but fails when a request has no metadata.
    mapping = variant(tmp_path, ('pin: "{{ request.identifier.pin | default(omit, true) }}"',
                                 'pin: "{{ request.metadata.pin }}"'))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/balance", json=BALANCE)
    assert response.status_code == 502
    payload = response.json()
    assert payload["error_code"] == "mapping_error"
    assert payload["request_accepted"] is False  # it failed before anything was sent
    assert "variant.yaml`, operation `balance`, step `lookup`: the request does not render: undefined value:" in payload["message"]
    assert "'None' has no attribute 'pin'" in payload["message"]
    line = next(i for i, l in enumerate(mapping.read_text().splitlines(), 1) if "request.metadata.pin" in l)
    assert payload["message"].endswith(f"(line {line})")
    assert sandbox.calls() == []
