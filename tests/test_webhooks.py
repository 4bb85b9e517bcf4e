"""Every operation's success path, with the spec's own request examples, over real HTTP to the
sandbox simulator, each response validated against the spec's response schema."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from .newstore_spec import EXAMPLES, check_response

# The spec's example card number, as the sandbox stores it: the mapping folds case to upper.
SPEC_CARD = "5H78K5367H09Q34N22"


def post(client, operation, body, provider="sandbox", **kw):
    return client.post(f"/{provider}/gift_card/{operation}", json=body, **kw)


def test_balance_with_the_spec_example(gateway, sandbox):
    sandbox.add_card(SPEC_CARD, pin="4125", amount_minor=10000, currency="USD")
    response = post(gateway, "balance", EXAMPLES["balance"])
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 100.00, "currency": "USD"}
    assert response.content == b'{"value":100.00,"currency":"USD"}'
    check_response("balance", response.json())
    [call] = sandbox.calls()
    assert call["path"] == "/v1/cards/lookup"
    assert call["body"] == {"number": SPEC_CARD, "pin": "4125"}
    assert call["headers"]["x-api-key"] == "***"  # the simulator masks it; it checked it was right


def test_issue_with_the_spec_example(gateway, sandbox):
    response = post(gateway, "issue", EXAMPLES["issue"])
    assert response.status_code == 200, response.text
    body = response.json()
    check_response("issue", body)
    issued = {c["number"]: c for c in sandbox.cards()}[body["identifier"]["number"]]
    assert body["identifier"]["pin"] == issued["pin"]
    assert issued["balance"] == {"amount_minor": 10000, "currency": "USD"}
    assert body["amount"] == {"value": 100, "currency": "USD"}
    assert body["idempotence_key"] == "5kl5345b2hjj5k79"
    [call] = sandbox.calls()
    # Typed leaves: the minor amount left as a JSON integer, not the string "10000".
    assert call["body"]["amount_minor"] == 10000 and isinstance(call["body"]["amount_minor"], int)
    assert call["body"]["customer_ref"] == "34683bfjbfjbdfkbfk"
    assert call["headers"]["idempotency-key"] == "5kl5345b2hjj5k79-issue"


def test_activate_with_the_spec_example(gateway, sandbox):
    sandbox.add_card(SPEC_CARD, pin="4125", state="registered", currency="USD")
    response = post(gateway, "activate", EXAMPLES["activate"])
    assert response.status_code == 200, response.text
    assert response.json() == {"identifier": {"number": SPEC_CARD, "pin": "4125"}}
    check_response("activate", response.json())
    card = {c["number"]: c for c in sandbox.cards()}[SPEC_CARD]
    assert card["state"] == "active" and card["balance"]["amount_minor"] == 10000
    [call] = sandbox.calls()
    assert call["path"] == f"/v1/cards/{SPEC_CARD}/activate"


def test_deactivate_with_the_spec_example(gateway, sandbox):
    sandbox.add_card(SPEC_CARD, pin="1043", amount_minor=500, currency="USD")
    response = post(gateway, "deactivate", EXAMPLES["deactivate"])
    assert response.status_code == 200, response.text
    check_response("deactivate", response.json())
    card = {c["number"]: c for c in sandbox.cards()}[SPEC_CARD]
    assert card["state"] == "deactivated"
    assert response.json()["deactivated_at"] == card["deactivated_at"]
    [call] = sandbox.calls()
    assert call["body"] == {"pin": "1043", "store_ref": "842840192840129841092"}


@pytest.mark.parametrize(
    ("number", "pin", "expected"),
    [
        ("6006491111111111", "480163", {"value": 50.00, "currency": "USD"}),
        ("6006492222222222", "731905", {"value": 10000, "currency": "JPY"}),
        ("6006493333333333", "259447", {"value": 12.345, "currency": "KWD"}),
        ("6006 4966-6666 6666", None, {"value": 20.00, "currency": "EUR"}),
    ],
)
def test_balance_converts_minor_units_by_currency(gateway, number, pin, expected):
    identifier = {"number": number} if pin is None else {"number": number, "pin": pin}
    response = post(gateway, "balance", {"identifier": identifier})
    assert response.status_code == 200, response.text
    assert response.json() == expected
    assert Decimal(response.text.split('"value":')[1].split(",")[0]) == Decimal(str(expected["value"]))


def test_issue_in_jpy_and_kwd_sends_exact_minor_units(gateway, sandbox):
    for value, currency, minor in [(5000, "JPY", 5000), (1.234, "KWD", 1234), (0.1, "USD", 10)]:
        body = copy.deepcopy(EXAMPLES["issue"])
        body["amount"] = {"value": value, "currency": currency}
        body["idempotence_key"] = f"key-{currency}"
        response = post(gateway, "issue", body)
        assert response.status_code == 200, response.text
        assert sandbox.calls()[-1]["body"]["amount_minor"] == minor


def test_issue_without_idempotence_key_sends_no_provider_key(gateway, sandbox):
    body = {k: v for k, v in EXAMPLES["issue"].items() if k != "idempotence_key"}
    response = post(gateway, "issue", body)
    assert response.status_code == 200, response.text
    assert "idempotence_key" not in response.json()
    assert "idempotency-key" not in sandbox.calls()[0]["headers"]


def test_health_lists_providers(gateway):
    response = gateway.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "providers": ["sandbox"]}
