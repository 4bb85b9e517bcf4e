"""Malformed webhooks: the right status, a spec-valid Error body, and no provider call."""

from __future__ import annotations

import copy
import json

import pytest

from .conftest import client_for, sandbox_provider, write_config
from .newstore_spec import EXAMPLES, check_error

ISSUE = EXAMPLES["issue"]


def without(body, *path):
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


def replace(body, value, *path):
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


def raw(obj) -> bytes:
    return json.dumps(obj).encode()


CT = {"Content-Type": "application/json"}

# (case id, path, body bytes, headers, status, error_code, message fragment)
CASES = [
    ("malformed-json", "/sandbox/gift_card/issue", b'{"amount": ', CT, 400, "invalid_request", "malformed JSON"),
    ("not-an-object", "/sandbox/gift_card/issue", b"[1, 2]", CT, 400, "invalid_request", "Expected `object`, got `array`"),
    ("empty-body", "/sandbox/gift_card/issue", b"", CT, 400, "invalid_request", "the request body is empty"),
    ("wrong-content-type", "/sandbox/gift_card/issue", raw(ISSUE), {"Content-Type": "text/plain"}, 415, "unsupported_media_type", "got `text/plain`"),
    ("no-content-type", "/sandbox/gift_card/issue", raw(ISSUE), {}, 415, "unsupported_media_type", "got `none`"),
    ("missing-amount", "/sandbox/gift_card/issue", raw(without(ISSUE, "amount")), CT, 400, "invalid_request", "missing required field `amount` - at `$`"),
    ("missing-customer", "/sandbox/gift_card/issue", raw(without(ISSUE, "customer")), CT, 400, "invalid_request", "missing required field `customer`"),
    ("missing-customer-id", "/sandbox/gift_card/issue", raw(without(ISSUE, "customer", "id")), CT, 400, "invalid_request", "missing required field `id` - at `$.customer`"),
    ("empty-customer-id", "/sandbox/gift_card/issue", raw(replace(ISSUE, "", "customer", "id")), CT, 400, "invalid_request", "length >= 1 - at `$.customer.id`"),
    ("missing-value", "/sandbox/gift_card/issue", raw(without(ISSUE, "amount", "value")), CT, 400, "invalid_request", "missing required field `value` - at `$.amount`"),
    ("missing-currency", "/sandbox/gift_card/issue", raw(without(ISSUE, "amount", "currency")), CT, 400, "invalid_request", "missing required field `currency` - at `$.amount`"),
    ("value-as-string", "/sandbox/gift_card/issue", raw(replace(ISSUE, "100", "amount", "value")), CT, 400, "invalid_request", "`value` must be a number, got string - at `$.amount`"),
    ("value-as-bool", "/sandbox/gift_card/issue", raw(replace(ISSUE, True, "amount", "value")), CT, 400, "invalid_request", "`value` must be a number, got boolean"),
    ("negative-amount", "/sandbox/gift_card/issue", raw(replace(ISSUE, -5, "amount", "value")), CT, 400, "invalid_request", "`value` must be a number >= 0 - at `$.amount`"),
    ("currency-2-letters", "/sandbox/gift_card/issue", raw(replace(ISSUE, "US", "amount", "currency")), CT, 400, "invalid_request", "length >= 3 - at `$.amount.currency`"),
    ("currency-4-letters", "/sandbox/gift_card/issue", raw(replace(ISSUE, "USDD", "amount", "currency")), CT, 400, "invalid_request", "length <= 3 - at `$.amount.currency`"),
    ("currency-digits", "/sandbox/gift_card/issue", raw(replace(ISSUE, "840", "amount", "currency")), CT, 400, "invalid_request", "at `$.amount.currency`"),
    ("too-many-decimals-usd", "/sandbox/gift_card/issue", raw(replace(ISSUE, 10.005, "amount", "value")), CT, 400, "invalid_request", "`value` has more decimal places than USD allows (2) - at `$.amount`"),
    ("decimals-for-jpy", "/sandbox/gift_card/issue", raw(replace(ISSUE, {"value": 10.5, "currency": "JPY"}, "amount")), CT, 400, "invalid_request", "more decimal places than JPY allows (0)"),
    ("rounding-needed-at-28-digits", "/sandbox/gift_card/issue", b'{"amount": {"value": 10.00000000000000000000000000001, "currency": "USD"}, "customer": {"id": "c"}}', CT, 400, "invalid_request", "`value`: an amount may have at most 12 decimal places"),
    ("tiny-exponent", "/sandbox/gift_card/issue", b'{"amount": {"value": 1e-999999999, "currency": "USD"}, "customer": {"id": "c"}}', CT, 400, "invalid_request", "at most 12 decimal places"),
    ("huge-exponent", "/sandbox/gift_card/issue", b'{"amount": {"value": 1e999990, "currency": "USD"}, "customer": {"id": "c"}}', CT, 400, "invalid_request", "`value`: an amount must be below 10^15"),
    ("unknown-currency", "/sandbox/gift_card/issue", raw(replace(ISSUE, "XYZ", "amount", "currency")), CT, 400, "invalid_request", "`currency`: `XYZ` is not an ISO 4217 currency code - at `$.amount`"),
    ("not-utf8", "/sandbox/gift_card/balance", b'{"identifier": {"number": "\xff"}}', CT, 400, "invalid_request", "malformed JSON"),
    ("deeply-nested", "/sandbox/gift_card/balance", b'{"identifier": {"number": "1"}, "metadata": ' + b'{"a": ' * 3000 + b'1' + b'}' * 3000 + b'}', CT, 400, "invalid_request", ""),
    ("customer-id-as-number", "/sandbox/gift_card/issue", raw(replace(ISSUE, 42, "customer", "id")), CT, 400, "invalid_request", "Expected `str`, got `int` - at `$.customer.id`"),
    ("key-as-number", "/sandbox/gift_card/issue", raw(replace(ISSUE, 7, "idempotence_key")), CT, 400, "invalid_request", "at `$.idempotence_key`"),
    ("balance-missing-identifier", "/sandbox/gift_card/balance", raw({"metadata": {}}), CT, 400, "invalid_request", "missing required field `identifier`"),
    ("balance-empty-number", "/sandbox/gift_card/balance", raw({"identifier": {"number": ""}}), CT, 400, "invalid_request", "at `$.identifier.number`"),
    ("activate-missing-card", "/sandbox/gift_card/activate", raw(without(EXAMPLES["activate"], "card_number")), CT, 400, "invalid_request", "missing required field `card_number`"),
    ("deactivate-card-as-list", "/sandbox/gift_card/deactivate", raw(replace(EXAMPLES["deactivate"], ["x"], "card_number")), CT, 400, "invalid_request", "at `$.card_number`"),
    ("unknown-provider", "/nope/gift_card/issue", raw(ISSUE), CT, 400, "unknown_provider", "unknown provider `nope`"),
    ("unknown-operation", "/sandbox/gift_card/refund", raw(ISSUE), CT, 400, "unknown_operation", "unknown operation `refund`"),
    ("unknown-route", "/sandbox/gift_cards/issue", raw(ISSUE), CT, 404, "not_found", "no such route"),
    ("oversize-body", "/sandbox/gift_card/issue", raw(replace(ISSUE, "x" * 70_000, "customer", "name")), CT, 413, "request_too_large", "larger than"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "code", "fragment"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_before_any_provider_call(gateway, sandbox, path, body, headers, status, code, fragment):
    response = gateway.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    payload = response.json()
    check_error(payload)
    assert payload["error_code"] == code
    assert payload["request_accepted"] is False
    assert fragment in payload["message"]
    assert sandbox.calls() == []


def test_wrong_method_gets_an_error_body(gateway, sandbox):
    response = gateway.get("/sandbox/gift_card/balance")
    assert response.status_code == 405
    check_error(response.json())
    assert response.json()["error_code"] == "method_not_allowed"


# --- inbound authentication ---------------------------------------------------------------


@pytest.fixture
def keyed(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("ACME_US_KEY", "us-key-0123456789")
    monkeypatch.setenv("ACME_EU_KEY", "eu-key-9876543210")
    config = write_config(tmp_path, {
        "acme-us": sandbox_provider(sandbox, inbound={"key": {"env": "ACME_US_KEY"}}),
        "acme-eu": sandbox_provider(sandbox, inbound={"key": {"env": "ACME_EU_KEY"}, "header": "X-NewStore-Key", "scheme": None}),
    })
    with client_for(config) as client:
        yield client


BALANCE = {"identifier": {"number": "6006491111111111", "pin": "480163"}}


@pytest.mark.parametrize(
    ("provider", "headers", "fragment"),
    [
        ("acme-us", {}, "missing `Authorization` header"),
        ("acme-us", {"Authorization": "Bearer wrong"}, "invalid API key for provider `acme-us`"),
        ("acme-us", {"Authorization": "us-key-0123456789"}, "invalid API key"),  # scheme missing
        ("acme-us", {"Authorization": "Bearer eu-key-9876543210"}, "invalid API key"),  # the other tenant's key
        ("acme-eu", {"Authorization": "Bearer eu-key-9876543210"}, "missing `X-NewStore-Key` header"),
        ("acme-eu", {"X-NewStore-Key": "Bearer eu-key-9876543210"}, "invalid API key"),
    ],
)
def test_missing_or_wrong_key_is_401(keyed, sandbox, provider, headers, fragment):
    response = keyed.post(f"/{provider}/gift_card/balance", json=BALANCE, headers=headers)
    assert response.status_code == 401
    check_error(response.json())
    assert response.json()["error_code"] == "unauthorized"
    assert response.json()["request_accepted"] is False
    assert fragment in response.json()["message"]
    assert "key-" not in response.json()["message"]
    assert sandbox.calls() == []


def test_right_key_is_served(keyed):
    us = keyed.post("/acme-us/gift_card/balance", json=BALANCE, headers={"Authorization": "Bearer us-key-0123456789"})
    eu = keyed.post("/acme-eu/gift_card/balance", json=BALANCE, headers={"X-NewStore-Key": "eu-key-9876543210"})
    assert us.status_code == eu.status_code == 200
    assert us.json() == eu.json() == {"value": 50.00, "currency": "USD"}


def test_auth_is_checked_before_the_body(keyed, sandbox):
    response = keyed.post("/acme-us/gift_card/balance", content=b"{not json", headers=CT)
    assert response.status_code == 401
