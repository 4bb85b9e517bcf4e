"""Paying with a gift card: NewStore's payment provider webhooks against the sandbox (hold then capture).

The spec's examples are accepted, every success validates against the spec's response schema
(transcribed in newstore_spec), bad input gets the spec's error body with no provider call, the
README's purchase runs as printed, and money movements survive timeouts, outages and
concurrent duplicates across two gateway processes with exactly one movement at the provider.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from decimal import Decimal

import httpx
import pytest

from .conftest import client_for, sandbox_provider, write_config
from .newstore_spec import PSP_EXAMPLES, check_psp_error, check_psp_response
from .stores import TEST_KEY, store_url
from .test_idempotency import Gateway

CARD, PIN = "6006491111111111", "480163"  # 50.00 USD in the sandbox
BASE = "/sandbox/financial_instruments"


@pytest.fixture
def pay(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_IDEMPOTENCY_KEY", TEST_KEY)
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, deadline=3)}, idempotency={
        "store": f"sqlite:///{tmp_path / 'idem.sqlite3'}",
        "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    with client_for(config) as client:
        yield client


def key() -> str:
    return str(uuid.uuid4())


def create(client, amount, *, card=CARD, pin=PIN, currency="USD", idem=None):
    body = {"account_id": "acct-1", "idempotency_key": idem or key(), "retry_id": key(),
            "arguments": {"amount": amount, "currency": currency, "payment_method": "gift_card",
                          "instrument": {"type": "token", "identifier": card}},
            "metadata": {"pin": pin} if pin else {}}
    return client.post(BASE, json=body)


def act(client, action, instrument, transactions, amount=None, currency="USD", idem=None):
    body = {"account_id": "acct-1", "instrument_id": instrument, "transactions": transactions,
            "idempotency_key": idem or key(), "retry_id": key(), "metadata": {}}
    if amount is not None:
        body["arguments"] = {"amount": amount, "currency": currency}
    return client.post(f"{BASE}/{instrument}/_{action}", json=body)


def balance(client, card=CARD, pin=PIN) -> Decimal:
    response = client.post("/sandbox/gift_card/balance", json={"identifier": {"number": card, "pin": pin}})
    assert response.status_code == 200, response.text
    return Decimal(str(response.json()["value"]))


def ok(response) -> list[dict]:
    assert response.status_code == 200, response.text
    body = response.json()
    check_psp_response(body)
    return body


def refused(response, status=400, code="instrument_error") -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    check_psp_error(body)
    assert body["error_code"] == code, body
    return body


def movements(sandbox) -> list[dict]:
    return [c for c in sandbox.calls() if c["path"].startswith("/v1/holds")]


# --- the purchase ------------------------------------------------------------------------------

def test_the_whole_purchase(pay, sandbox):
    assert balance(pay) == Decimal("50.00")
    [auth] = ok(create(pay, 30))
    assert auth["reason"] == "authorization" and Decimal(str(auth["capture_amount"])) == 30
    assert auth["refund_amount"] == 0 and auth["instrument_id"] == auth["transaction_id"]
    assert auth["metadata"]["essential"]["instrument_metadata"]["gift_card_number"] == "****1111"
    instrument, txs = auth["instrument_id"], [auth]
    assert balance(pay) == Decimal("20.00")  # 30 held

    txs += ok(act(pay, "capture", instrument, txs, 20))
    assert (txs[-1]["reason"], txs[-1]["capture_amount"], txs[-1]["refund_amount"]) == ("capture", -20, 20)
    txs += ok(act(pay, "capture", instrument, txs, 10))  # capture to zero
    assert balance(pay) == Decimal("20.00")
    assert sum(Decimal(str(t["capture_amount"])) for t in txs) == 0

    over = refused(act(pay, "capture", instrument, txs, 0.01))
    assert "0 is available for capture" in over["message"] or "0.00 is available" in over["message"]
    txs += ok(act(pay, "refund", instrument, txs, 5))
    assert (txs[-1]["reason"], txs[-1]["refund_amount"]) == ("refund", -5)
    assert balance(pay) == Decimal("25.00")
    refused(act(pay, "refund", instrument, txs, 26))  # 25 left to refund

    # A second instrument, revoked: the hold goes back.
    [second] = ok(create(pay, 10))
    assert balance(pay) == Decimal("15.00")
    [void] = ok(act(pay, "revoke", second["instrument_id"], [second]))
    assert (void["reason"], void["capture_amount"]) == ("revoke", -10)
    assert balance(pay) == Decimal("25.00")


def test_over_capture_and_over_refund_are_refused_before_any_provider_call(pay, sandbox):
    [auth] = ok(create(pay, 30))
    sandbox.http.delete("/_sim/calls")
    body = refused(act(pay, "capture", auth["instrument_id"], [auth], 30.01))
    assert body["details"]["gateway_error"] == "instrument_error"
    refused(act(pay, "refund", auth["instrument_id"], [auth], 1))  # nothing captured yet
    assert movements(sandbox) == []


@pytest.mark.parametrize(("card", "pin", "amount", "fragment"), [
    (CARD, PIN, 50.01, "does not hold enough"),
    ("6006490000000000", None, 5, "does not exist"),
    (CARD, "000000", 5, "PIN is wrong"),
    ("6006494444444444", "602718", 5, "card_deactivated"),
])
def test_refusals_are_instrument_errors(pay, sandbox, card, pin, amount, fragment):
    body = refused(create(pay, amount, card=card, pin=pin))
    assert fragment in body["message"]
    assert balance(pay) == Decimal("50.00")


def test_the_same_key_gets_the_same_answer_whatever_the_body(pay, sandbox):
    idem = key()
    first = create(pay, 30, idem=idem)
    again = create(pay, 12, idem=idem)  # a changed body: still the first answer
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert len([c for c in movements(sandbox) if c["path"] == "/v1/holds"]) == 1
    assert balance(pay) == Decimal("20.00")


# --- NewStore's own examples and bad input -------------------------------------------------------

@pytest.mark.parametrize("operation", list(PSP_EXAMPLES))
def test_the_specs_request_examples_are_accepted(pay, sandbox, operation):
    body = PSP_EXAMPLES[operation]
    path = BASE if operation == "create_instrument" else f"{BASE}/{body['instrument_id']}/_{operation}"
    response = pay.post(path, json=body)
    # Accepted and sent: the sandbox knows no such card or hold, and says so.
    refused(response)
    assert response.json()["details"]["gateway_error"] == "instrument_error"
    assert len(movements(sandbox)) == 1


def _capture_body(**changes):
    body = copy.deepcopy(PSP_EXAMPLES["capture"])
    for dotted, value in changes.items():
        node = body
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return body


BAD = [
    ("create", {"idempotency_key": "k"}, "`account_id`"),
    ("create", {**PSP_EXAMPLES["create_instrument"], "arguments": {"amount": 1, "currency": "USD"}}, "`instrument`"),
    ("create", {**PSP_EXAMPLES["create_instrument"], "retry_id": None}, "retry_id"),
    ("create", {**PSP_EXAMPLES["create_instrument"], "idempotency_key": ""}, "idempotency_key"),
    ("create", {**PSP_EXAMPLES["create_instrument"], "idempotency_key": "   "}, "idempotency_key"),
    ("create", {**PSP_EXAMPLES["create_instrument"],
                "arguments": {**PSP_EXAMPLES["create_instrument"]["arguments"], "amount": -1}}, "amount"),
    ("create", {**PSP_EXAMPLES["create_instrument"],
                "arguments": {**PSP_EXAMPLES["create_instrument"]["arguments"], "amount": 0}}, "greater than 0"),
    ("create", {**PSP_EXAMPLES["create_instrument"],
                "arguments": {**PSP_EXAMPLES["create_instrument"]["arguments"], "amount": "10"}}, "number"),
    ("create", {**PSP_EXAMPLES["create_instrument"],
                "arguments": {**PSP_EXAMPLES["create_instrument"]["arguments"], "amount": 10.001}}, "decimal places"),
    ("create", {**PSP_EXAMPLES["create_instrument"],
                "arguments": {**PSP_EXAMPLES["create_instrument"]["arguments"], "currency": "US"}}, "currency"),
    ("create", {**PSP_EXAMPLES["create_instrument"],
                "arguments": {**PSP_EXAMPLES["create_instrument"]["arguments"], "currency": "XYZ"}}, "currency"),
    ("create", {**PSP_EXAMPLES["create_instrument"], "arguments": {
        **PSP_EXAMPLES["create_instrument"]["arguments"], "instrument": {"type": "cheque", "identifier": "x"}}}, "type"),
    ("create", {**PSP_EXAMPLES["create_instrument"], "arguments": {
        **PSP_EXAMPLES["create_instrument"]["arguments"], "instrument": {"type": "token", "identifier": ""}}}, "identifier"),
    ("capture", _capture_body(transactions=...), "`transactions`"),
    ("capture", _capture_body(arguments=...), "`arguments`"),
    ("capture", _capture_body(**{"arguments.amount": 100.5}), "available for capture"),
    ("capture", _capture_body(**{"arguments.currency": "EUR"}), "instrument is in USD"),
    ("capture", _capture_body(transactions=[]), "no transactions"),
    ("capture", _capture_body(**{"transactions": [{"transaction_id": "t"}]}), "instrument_id"),
    ("refund", _capture_body(), "available for refund"),
    ("create", '{"account_id": ', "malformed JSON"),
    ("create", "", "empty"),
]


@pytest.mark.parametrize(("operation", "body", "fragment"), BAD)
def test_bad_input_gets_the_specs_error_body_and_no_provider_call(pay, sandbox, operation, body, fragment):
    path = BASE if operation == "create" else f"{BASE}/i-1/_{operation}"
    if isinstance(body, str):
        response = pay.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = pay.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    check_psp_error(error)
    assert error["error_code"] in ("failed_command", "instrument_error"), error
    assert fragment in error["message"], error["message"]
    assert "request_accepted" not in error  # not a field of this contract's error body
    assert sandbox.calls() == []


def test_an_unsupported_payment_operation_and_an_unknown_route(pay, sandbox):
    response = pay.post("/sandbox/financial_instruments/i-1/_settle", json={})
    assert response.status_code in (404, 405)
    assert pay.post("/nope/financial_instruments", json=PSP_EXAMPLES["create_instrument"]).json()[
        "error_code"] == "failed_command"


# --- faults on money movements -------------------------------------------------------------------

def test_a_capture_that_times_out_is_retried_with_the_same_key_and_moves_money_once(pay, sandbox):
    [auth] = ok(create(pay, 30))
    idem = key()
    sandbox.fault("delay", seconds=4)  # past the 3 s deadline; the sandbox still captures
    first = act(pay, "capture", auth["instrument_id"], [auth], 20, idem=idem)
    body = refused(first, status=500, code="retry_error")  # retry_safe: NewStore retries
    assert body["details"]["gateway_error"] == "gateway_deadline_exceeded"
    import time
    time.sleep(1.5)  # the delayed capture lands at the sandbox
    second = ok(act(pay, "capture", auth["instrument_id"], [auth], 20, idem=idem))
    captures = [c for c in movements(sandbox) if c["path"].endswith("/capture")]
    assert len(captures) == 2  # two requests, one redemption: the second was replayed by the provider
    holds = sandbox.http.get("/_sim/holds").json()["holds"]
    [hold] = [h for h in holds if h["id"] == auth["instrument_id"]]
    assert hold["captured_minor"] == 2000
    assert second[0]["reason"] == "capture"
    assert balance(pay) == Decimal("20.00")


def test_a_provider_down_before_sending_is_retryable_and_moves_nothing(sandbox, tmp_path):
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, vars={"base_url": "http://127.0.0.1:9"})})
    with client_for(config) as client:
        response = create(client, 30)
    body = refused(response, status=500, code="retry_error")
    assert body["details"]["gateway_error"] == "provider_unreachable"
    assert sandbox.calls() == []


def test_an_unknown_outcome_without_retry_safe_is_not_retried(sandbox, tmp_path):
    mapping = tmp_path / "unsafe.yaml"
    from .conftest import SANDBOX_MAPPING
    mapping.write_text(SANDBOX_MAPPING.read_text().replace("  create_instrument:\n    retry_safe: true",
                                                           "  create_instrument:\n    retry_safe: false"))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping, deadline=1.5)})
    sandbox.fault("status", status=500)
    with client_for(config) as client:
        response = create(client, 30)
    body = refused(response, status=400, code="psp_api_error")
    assert body["details"]["gateway_error"] == "provider_error"


def test_100_concurrent_duplicate_captures_over_two_processes_move_money_once(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_IDEMPOTENCY_KEY", TEST_KEY)
    url = store_url("sqlite", tmp_path)
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)}, idempotency={
        "store": url, "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    with client_for(config) as client:
        [auth] = ok(create(client, 30))
    log = tmp_path / "gateways.log"
    gateways = [Gateway(config, log), Gateway(config, log)]
    body = {"account_id": "acct-1", "instrument_id": auth["instrument_id"], "transactions": [auth],
            "idempotency_key": key(), "retry_id": key(), "arguments": {"amount": 20, "currency": "USD"}}
    try:
        sandbox.fault("delay", seconds=1.0)  # the one real capture stays in flight while the rest arrive

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(
                    client.post(gateways[i % 2].url + f"{BASE}/{auth['instrument_id']}/_capture", json=body)
                    for i in range(100)))

        responses = asyncio.run(burst())
    finally:
        for g in gateways:
            g.stop()
    assert {r.status_code for r in responses} == {200}, {r.text for r in responses}
    assert len({r.content for r in responses}) == 1
    assert len([c for c in movements(sandbox) if c["path"].endswith("/capture")]) == 1
    [hold] = [h for h in sandbox.http.get("/_sim/holds").json()["holds"] if h["id"] == auth["instrument_id"]]
    assert hold["captured_minor"] == 2000
