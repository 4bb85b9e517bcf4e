"""The Adyen Stored Value mapping against the Adyen simulator, over HTTP."""

from __future__ import annotations

import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_error, check_response

KEY_FILE = ROOT / "simulators" / "adyen" / "adyen.key"
BASE = "/pal/servlet/StoredValue/v46"


@pytest.fixture(scope="module")
def adyen(tmp_path_factory):
    yield from start_simulator("simulators.adyen", tmp_path_factory)


@pytest.fixture
def gateway(adyen, tmp_path):
    adyen.reset()

    def entry(card_type: str) -> dict:
        return {"mapping": str(ROOT / "mappings" / "adyen.yaml"),
                "vars": {"base_url": adyen.url + BASE, "merchant_account": "TestMerchantGateway", "card_type": card_type},
                "secrets": {"api_key": {"file": str(KEY_FILE)}}, "inbound": "none"}

    config = write_config(tmp_path, {"adyen": entry("givex"), "adyen-svs": entry("svs"),
                                     "adyen-valuelink": entry("valuelink")}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def post(client, operation, body, provider="adyen"):
    return client.post(f"/{provider}/gift_card/{operation}", json=body)


@pytest.mark.parametrize(("provider", "number", "pin", "expected"), [
    ("adyen", "6036280000000001001", "41093", {"value": 50.00, "currency": "USD"}),
    ("adyen", "6036 2800 0000 0002 002", "58214", {"value": 10000, "currency": "JPY"}),
    ("adyen-svs", "6006490000000003003", "7720", {"value": 12.345, "currency": "KWD"}),
])
def test_balance(gateway, adyen, provider, number, pin, expected):
    response = post(gateway, "balance", {"identifier": {"number": number, "pin": pin}}, provider)
    assert response.status_code == 200, response.text
    assert response.json() == expected
    check_response("balance", response.json())
    [call] = adyen.calls()
    assert call["path"] == f"{BASE}/checkBalance"
    assert call["headers"]["x-api-key"] == "***"
    assert call["body"]["paymentMethod"]["number"] == number.replace(" ", "")
    assert call["body"]["merchantAccount"] == "TestMerchantGateway"


@pytest.mark.parametrize(("number", "pin", "code"), [
    ("6036289999999999999", "1", "card_not_found"),
    ("6036280000000001001", "00000", "invalid_pin"),
    ("6036280000000004004", "30571", "card_inactive"),
    ("6036280000000005501", "22551", "card_inactive"),
])
def test_balance_refusals(gateway, number, pin, code):
    response = post(gateway, "balance", {"identifier": {"number": number, "pin": pin}})
    assert response.status_code == 400, response.text
    check_error(response.json())
    assert response.json()["error_code"] == code
    assert response.json()["request_accepted"] is False
    assert response.json()["details"]["upstream_status"] == 200  # Adyen refuses inside HTTP 200


def test_issue_creates_an_active_card_in_minor_units(gateway, adyen):
    body = {"amount": {"value": 25.5, "currency": "USD"}, "customer": {"id": "c1"}, "idempotence_key": "adyen-issue-1"}
    response = post(gateway, "issue", body)
    assert response.status_code == 200, response.text
    check_response("issue", response.json())
    identifier = response.json()["identifier"]
    card = next(c for c in adyen.cards() if c["number"] == identifier["number"])
    assert card["status"] == "active" and card["balance"] == {"currency": "USD", "value": 2550}
    assert card["securityCode"] == identifier["pin"]
    [call] = adyen.calls()
    assert call["body"]["amount"] == {"currency": "USD", "value": 2550}  # an integer, as Adyen requires
    assert call["headers"]["idempotency-key"] == "adyen-issue-1-issue"
    # The same key again: the gateway replays, Adyen is not called twice.
    again = post(gateway, "issue", body)
    assert again.content == response.content and len(adyen.calls()) == 1


def test_activate_and_then_again(gateway, adyen):
    body = {"card_number": "6036280000000005502", "amount": {"value": 40, "currency": "USD"}, "customer": {"id": "c1"}}
    response = post(gateway, "activate", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"identifier": {"number": "6036280000000005502"}}
    card = next(c for c in adyen.cards() if c["number"] == "6036280000000005502")
    assert card["status"] == "active" and card["balance"]["value"] == 4000
    again = post(gateway, "activate", body)
    assert again.status_code == 400 and again.json()["error_code"] == "card_already_active"


def test_deactivate_is_permanent(gateway, adyen):
    body = {"card_number": "6036280000000001001", "pin": "41093"}
    response = post(gateway, "deactivate", body)
    assert response.status_code == 200, response.text
    check_response("deactivate", response.json())
    again = post(gateway, "deactivate", body)
    assert again.status_code == 400 and again.json()["error_code"] == "card_inactive"


def test_rate_limited(gateway, adyen):
    adyen.fault("status", status=429)
    response = post(gateway, "balance", {"identifier": {"number": "6036280000000001001", "pin": "41093"}})
    assert response.status_code == 503 and response.json()["error_code"] == "rate_limit"


def test_wrong_merchant_account_is_named(adyen, tmp_path):
    config = write_config(tmp_path, {"adyen": {
        "mapping": str(ROOT / "mappings" / "adyen.yaml"),
        "vars": {"base_url": adyen.url + BASE, "merchant_account": "NotOurs"},
        "secrets": {"api_key": {"file": str(KEY_FILE)}}, "inbound": "none"}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        response = post(client, "balance", {"identifier": {"number": "6036280000000001001", "pin": "41093"}})
    assert response.status_code == 400
    assert response.json()["error_code"] == "provider_auth_failed"


# --- optional values are left out, never sent as null -------------------------------------------


def test_balance_without_a_pin_sends_no_security_code(gateway, adyen):
    # Adyen's paymentMethod is a map of strings: `securityCode: null` is not a string (the
    # simulator answers it 400 702, see test_simulators_strict); an absent PIN is left out.
    response = post(gateway, "balance", {"identifier": {"number": "7777007007007007"}}, "adyen-valuelink")
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 20.00, "currency": "EUR"}
    [call] = adyen.calls()
    assert call["body"]["paymentMethod"] == {"type": "valuelink", "number": "7777007007007007"}


def test_deactivate_without_a_pin_sends_no_security_code(gateway, adyen):
    response = post(gateway, "deactivate", {"card_number": "7777007007007007"}, "adyen-valuelink")
    assert response.status_code == 200, response.text
    [call] = adyen.calls()
    assert "securityCode" not in call["body"]["paymentMethod"]
    card = next(c for c in adyen.cards() if c["number"] == "7777007007007007")
    assert card["status"] == "inactive"


def test_an_empty_pin_is_left_out_too(gateway, adyen):
    response = post(gateway, "balance", {"identifier": {"number": "7777007007007007", "pin": ""}}, "adyen-valuelink")
    assert response.status_code == 200, response.text
    assert "securityCode" not in adyen.calls()[0]["body"]["paymentMethod"]


# --- what Adyen answers when it does not process a request -------------------------------------


def test_a_request_adyen_rejects_is_a_400_service_error(gateway, adyen):
    # SVS issues only with an amount above zero: Adyen answers HTTP 400 (never 422 in this API).
    body = {"amount": {"value": 0, "currency": "USD"}, "customer": {"id": "c1"}}
    response = post(gateway, "issue", body, "adyen-svs")
    assert response.status_code == 400, response.text
    check_error(response.json())
    payload = response.json()
    assert payload["error_code"] == "provider_validation_error"
    assert payload["request_accepted"] is False
    details = payload["details"]
    assert details["upstream_status"] == 400
    assert details["adyen_error_code"] == "137" and details["adyen_error_type"] == "validation"
    assert len(details["psp_reference"]) == 16


def test_an_unreadable_card_number_is_card_not_found(gateway, adyen):
    response = post(gateway, "balance", {"identifier": {"number": "12345", "pin": "1"}})
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "card_not_found"
    assert response.json()["details"] == {"step": "check", "upstream_status": 400, "adyen_error_code": "101"}


def test_result_code_error_is_a_retryable_unknown_outcome(gateway, adyen):
    response = post(gateway, "deactivate", {"card_number": "6036280000000009009", "pin": "90909",
                                            "idempotence_key": "adyen-error-1"})
    assert response.status_code == 503, response.text
    check_error(response.json())
    payload = response.json()
    assert payload["error_code"] == "provider_error"
    assert payload["request_accepted"] is True
    assert payload["details"]["refusal_reason"] == "Acquirer Error"
    # Not stored as a definitive answer: NewStore's retry reaches Adyen again.
    again = post(gateway, "deactivate", {"card_number": "6036280000000009009", "pin": "90909",
                                         "idempotence_key": "adyen-error-1"})
    assert again.status_code == 503 and len(adyen.calls()) == 2
