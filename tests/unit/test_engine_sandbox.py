"""engine + the shipped sandbox mapping against the real sandbox simulator, in-process.

The simulator app (``simulators/sandbox``) is called through ``httpx.ASGITransport``: no port, no
process. Each test gets a fresh simulator with its seeded cards.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from simulators.sandbox.app import create_app as create_sandbox_app
from gateway.compile.gateway_file import load_mapping
from tests.unit.support import provider_of, run

ROOT = Path(__file__).resolve().parents[2]
KEY = "unit-sandbox-key"
CARD, PIN = "6006491111111111", "480163"  # seeded: active, 50.00 USD
REGISTERED = "6006495555555551"            # seeded: registered, not active yet
NO_PIN_EUR = "6006496666666666"            # seeded: active, 20.00 EUR, no PIN

# The simulator's handlers use Litestar 2's inferred dependencies (`sim`), which Litestar 2.25
# flags for 3.0 each time an app is built; the subprocess-run simulator of the HTTP tests is quiet.
pytestmark = pytest.mark.filterwarnings("ignore::litestar.utils.deprecation.LitestarDeprecationWarning")


@pytest.fixture(scope="module")
def provider():
    plan, diagnostics = load_mapping(ROOT / "mappings" / "sandbox.yaml")
    assert plan is not None, diagnostics
    return provider_of(plan, vars={"base_url": "http://sandbox.test"}, secrets={"api_key": KEY})


@pytest.fixture
def sandbox():
    return create_sandbox_app(KEY)


def calls(app):
    return app.state.simulator.calls


def balance(provider, app, number=CARD, pin=PIN):
    identifier = {"number": number} if pin is None else {"number": number, "pin": pin}
    return run(provider, app, "balance", {"identifier": identifier})


def test_balance_of_a_seeded_card(provider, sandbox):
    out = run(provider, sandbox, "balance", {"identifier": {"number": "6006 4911 1111 1111", "pin": PIN}})
    assert (out.status, out.body) == (200, {"value": 50, "currency": "USD"})
    [call] = calls(sandbox)
    assert (call["method"], call["path"]) == ("POST", "/v1/cards/lookup")
    assert call["headers"]["x-api-key"] == "***"  # the simulator masks it in its log; it accepted it (200)


def test_three_decimal_currency(provider, sandbox):
    out = balance(provider, sandbox, "6006493333333333", "259447")
    assert out.body == {"value": 12.345, "currency": "KWD"}


def test_the_wrong_api_key_is_the_mappings_401_rule(sandbox):
    plan, _ = load_mapping(ROOT / "mappings" / "sandbox.yaml")
    wrong = provider_of(plan, vars={"base_url": "http://sandbox.test"}, secrets={"api_key": "not-the-key"})
    out = balance(wrong, sandbox)
    assert (out.status, out.code) == (400, "provider_auth_failed")


def test_wrong_pin_is_a_refusal_inside_a_200(provider, sandbox):
    out = balance(provider, sandbox, pin="000000")
    assert out.status == 400 and out.body == {
        "error_code": "invalid_pin", "message": "The PIN is wrong.", "request_accepted": False,
        "details": {"step": "lookup", "upstream_status": 200}}


def test_unknown_card_is_card_not_found(provider, sandbox):
    out = balance(provider, sandbox, "6006490000000000", "1")
    assert (out.status, out.code, out.body["details"]["upstream_status"]) == (400, "card_not_found", 404)


def test_issue_then_the_new_cards_balance(provider, sandbox):
    issued = run(provider, sandbox, "issue", {"amount": {"value": 25, "currency": "USD"}, "customer": {"id": "c-1"},
                                              "idempotence_key": "unit-issue-1"})
    assert issued.status == 200
    identifier = issued.body["identifier"]
    assert issued.body["amount"] == {"value": 25, "currency": "USD"} and issued.body["idempotence_key"] == "unit-issue-1"
    assert calls(sandbox)[0]["headers"]["idempotency-key"] == "unit-issue-1-issue"
    assert balance(provider, sandbox, identifier["number"], identifier["pin"]).body == {"value": 25, "currency": "USD"}


def test_activate_once_then_already_active(provider, sandbox):
    body = {"card_number": REGISTERED, "amount": {"value": 40, "currency": "USD"}, "customer": {"id": "c-1"},
            "idempotence_key": "unit-act-1"}
    first = run(provider, sandbox, "activate", body)
    assert first.status == 200 and first.body["identifier"]["number"] == REGISTERED
    assert calls(sandbox)[0]["path"] == f"/v1/cards/{REGISTERED}/activate"
    again = run(provider, sandbox, "activate", {**body, "idempotence_key": "unit-act-2"})
    assert (again.status, again.code) == (400, "card_already_active")  # the step's own rule
    assert balance(provider, sandbox, REGISTERED, first.body["identifier"]["pin"]).body["value"] == 40


def test_deactivate_then_balance_is_refused(provider, sandbox):
    out = run(provider, sandbox, "deactivate", {"card_number": NO_PIN_EUR, "idempotence_key": "unit-off-1"})
    assert out.status == 200 and out.body["deactivated_at"].endswith("Z")
    assert calls(sandbox)[0]["body"] == {}  # no pin, no store_id: both omitted
    after = balance(provider, sandbox, NO_PIN_EUR, None)
    assert (after.status, after.code) == (400, "card_inactive")


# -- paying with a card: hold then capture ------------------------------------------------------

def create(provider, sandbox, amount, key="unit-pay-1"):
    return run(provider, sandbox, "create_instrument", {
        "account_id": "acct-1", "idempotency_key": key, "retry_id": "r-1", "metadata": {"pin": PIN},
        "arguments": {"amount": amount, "currency": "USD", "payment_method": "gift_card",
                      "instrument": {"type": "token", "identifier": CARD}}})


def tx(instrument, capture, refund=0, reason="authorization", tid=None):
    return {"transaction_id": tid or f"{instrument}-{reason}", "instrument_id": instrument, "currency": "USD",
            "capture_amount": capture, "refund_amount": refund, "reason": reason}


def test_a_whole_purchase(provider, sandbox):
    auth = create(provider, sandbox, 30)
    assert auth.status == 200
    [hold] = auth.body
    hid = hold["instrument_id"]
    assert hold["transaction_id"] == hid and hold["capture_amount"] == 30 and hold["reason"] == "authorization"
    assert hold["metadata"] == {"essential": {"instrument_metadata": {"gift_card_number": "****1111"}}}
    assert balance(provider, sandbox).body["value"] == 20  # 30 of 50 held

    path = {"financial_instrument_id": hid}
    cap = run(provider, sandbox, "capture", {"account_id": "acct-1", "idempotency_key": "unit-cap-1",
                                             "transactions": [tx(hid, 30)], "arguments": {"amount": 20, "currency": "USD"}},
              path=path)
    assert cap.status == 200 and cap.body[0]["capture_amount"] == -20 and cap.body[0]["refund_amount"] == 20
    assert calls(sandbox)[-1]["path"] == f"/v1/holds/{hid}/capture"
    history = [tx(hid, 30), tx(hid, -20, 20, "capture")]
    ref = run(provider, sandbox, "refund", {"account_id": "acct-1", "idempotency_key": "unit-ref-1",
                                            "transactions": history, "arguments": {"amount": 5, "currency": "USD"}},
              path=path)
    assert ref.status == 200 and ref.body[0]["refund_amount"] == -5 and ref.body[0]["reason"] == "refund"
    rev = run(provider, sandbox, "revoke", {"account_id": "acct-1", "idempotency_key": "unit-rev-1",
                                            "transactions": history + [tx(hid, 0, -5, "refund")]}, path=path)
    assert rev.status == 200
    assert rev.body[0]["capture_amount"] == -10 and rev.body[0]["reason"] == "revoke"  # the 10 still held
    assert balance(provider, sandbox).body["value"] == Decimal(35)  # 50 - 20 captured + 5 refunded


def test_a_payment_refusal_is_instrument_error_with_the_payment_body(provider, sandbox):
    out = create(provider, sandbox, 500)
    assert out.status == 400
    assert out.body["error_code"] == "instrument_error" and "request_accepted" not in out.body
    assert out.body["message"] == "The gift card does not hold enough for this payment."
    assert out.body["details"]["gateway_error"] == "instrument_error"


def test_capture_of_an_unknown_hold_is_instrument_error(provider, sandbox):
    out = run(provider, sandbox, "capture", {"account_id": "a", "idempotency_key": "k", "transactions": [tx("hold_x", 10)],
                                             "arguments": {"amount": 5, "currency": "USD"}},
              path={"financial_instrument_id": "hold_x"})
    assert (out.status, out.code, out.body["details"]["upstream_status"]) == (400, "instrument_error", 404)
