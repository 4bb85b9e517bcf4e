"""The Voucherify mapping against the Voucherify simulator, over HTTP."""

from __future__ import annotations

import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_error, check_response

FOLDER = ROOT / "examples" / "providers" / "voucherify"


@pytest.fixture(scope="module")
def voucherify(tmp_path_factory):
    yield from start_simulator("examples.providers.voucherify", tmp_path_factory)


@pytest.fixture
def gateway(voucherify, tmp_path):
    voucherify.reset()
    config = write_config(tmp_path, {"voucherify": {
        "mapping": str(ROOT / "mappings" / "voucherify.yaml"), "vars": {"base_url": voucherify.url, "currency": "EUR"},
        "secrets": {"app_id": {"file": str(FOLDER / "voucherify.app_id")},
                    "app_token": {"file": str(FOLDER / "voucherify.app_token")}},
        "inbound": "none"}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def post(client, operation, body):
    return client.post(f"/voucherify/gift_card/{operation}", json=body)


def card(voucherify, code):
    return next(c for c in voucherify.cards() if c["code"] == code)


def test_balance_in_cents_of_the_projects_currency(gateway, voucherify):
    response = post(gateway, "balance", {"identifier": {"number": "GIFT-PARTIAL-2500"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 25.00, "currency": "EUR"}
    [call] = voucherify.calls()
    assert call["method"] == "GET" and call["headers"]["x-app-token"] == "***"


def test_a_code_with_special_characters_is_url_encoded(gateway, voucherify):
    response = post(gateway, "balance", {"identifier": {"number": "GIFT/2024 #1"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 75.00, "currency": "EUR"}


@pytest.mark.parametrize(("code", "error"), [("NO-SUCH-CODE", "card_not_found"), ("GIFT-DISABLED-1500", "card_inactive")])
def test_balance_errors(gateway, code, error):
    response = post(gateway, "balance", {"identifier": {"number": code}})
    assert response.status_code == 400, response.text
    check_error(response.json())
    assert response.json()["error_code"] == error


def test_issue_x100_without_currency(gateway, voucherify):
    body = {"amount": {"value": 12.34, "currency": "EUR"}, "customer": {"id": "c1"}, "idempotence_key": "vc-1"}
    response = post(gateway, "issue", body)
    assert response.status_code == 200, response.text
    check_response("issue", response.json())
    [call] = voucherify.calls()
    assert call["body"]["gift"] == {"amount": 1234}
    assert card(voucherify, response.json()["identifier"]["number"])["gift"]["balance"] == 1234


def test_activate_enables_and_loads_once(gateway, voucherify):
    body = {"card_number": "GIFT-DISABLED-1500", "amount": {"value": 20, "currency": "EUR"}, "customer": {"id": "c1"}}
    response = post(gateway, "activate", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"identifier": {"number": "GIFT-DISABLED-1500"}}
    assert [c["path"] for c in voucherify.calls()][1:] == ["/v1/vouchers/GIFT-DISABLED-1500/enable",
                                                            "/v1/vouchers/GIFT-DISABLED-1500/balance"]
    voucher = card(voucherify, "GIFT-DISABLED-1500")
    assert voucher["active"] is True and voucher["gift"]["balance"] == 3500
    again = post(gateway, "activate", body)
    assert again.status_code == 400 and again.json()["error_code"] == "card_already_active"
    assert card(voucherify, "GIFT-DISABLED-1500")["gift"]["balance"] == 3500  # not loaded twice


def test_deactivate_disables(gateway, voucherify):
    response = post(gateway, "deactivate", {"card_number": "GIFT-ACTIVE-5000"})
    assert response.status_code == 200, response.text
    check_response("deactivate", response.json())
    assert card(voucherify, "GIFT-ACTIVE-5000")["active"] is False
    unknown = post(gateway, "deactivate", {"card_number": "NO-SUCH-CODE"})
    assert unknown.status_code == 400 and unknown.json()["error_code"] == "card_not_found"


def test_rate_limited(gateway, voucherify):
    voucherify.fault("status", status=429)
    response = post(gateway, "balance", {"identifier": {"number": "GIFT-ACTIVE-5000"}})
    assert response.status_code == 503 and response.json()["error_code"] == "rate_limit"
