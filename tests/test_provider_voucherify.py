"""The Voucherify mapping against the Voucherify simulator, over HTTP."""

from __future__ import annotations

import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_error, check_response

FOLDER = ROOT / "simulators" / "voucherify"


@pytest.fixture(scope="module")
def voucherify(tmp_path_factory):
    yield from start_simulator("simulators.voucherify", tmp_path_factory)


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


# --- canned answers and simulator replies carry what Voucherify always returns -----------------
# voucherifyio/voucherify-openapi, reference/OpenAPI.json: the Voucher schema (returned by GET,
# create, enable, disable) and VouchersBalanceUpdateResponseBody.

VOUCHER_FIELDS = {
    "id", "code", "campaign", "campaign_id", "category", "category_id", "type", "discount", "gift", "loyalty_card",
    "start_date", "expiration_date", "validity_timeframe", "validity_day_of_week", "validity_hours", "active",
    "additional_info", "metadata", "assets", "is_referral_code", "created_at", "updated_at", "holder_id",
    "referrer_id", "object", "publish", "redemption", "categories", "validation_rules_assignments",
}
# What a canned voucher must carry at least: what identifies it and what a mapping may read.
CANNED_VOUCHER_FIELDS = {"id", "code", "type", "gift", "active", "metadata", "created_at", "updated_at", "object"}
BALANCE_FIELDS = {"amount", "total", "balance", "type", "operation_type", "object", "related_object"}


def _canned_bodies():
    import yaml

    cases = yaml.safe_load((ROOT / "mappings" / "voucherify.test.yaml").read_text())["cases"]
    for case in cases:
        for step, answer in case.get("provider", {}).items():
            if 200 <= answer.get("status", 200) < 300:
                yield f"{case['name']} / {step}", answer["body"]


def test_canned_vouchers_in_the_offline_cases_are_whole_voucher_objects():
    seen = 0
    for where, body in _canned_bodies():
        if body.get("object") == "balance":
            assert set(body) == BALANCE_FIELDS, where
            continue
        if _payment_body(where, body):
            continue
        seen += 1
        missing = CANNED_VOUCHER_FIELDS - set(body)
        assert not missing, f"{where}: a voucher without {sorted(missing)}"
        assert body["object"] == "voucher" and body["type"] == "GIFT_VOUCHER", where
        assert {"amount", "balance"} <= set(body["gift"]), where
        assert set(body) <= VOUCHER_FIELDS, where
    assert seen >= 8


# Payment answers (reference/readonly-sdks/python/OpenAPI.json): RedemptionsRedeemResponseBody,
# RedemptionsListResponseBody, RedemptionsRollbacksCreateResponseBody, VouchersTransactionsListResponseBody.
REDEEM_FIELDS = {"redemptions", "parent_redemption", "order", "inapplicable_redeemables", "skipped_redeemables"}
ROLLBACKS_FIELDS = {"rollbacks", "parent_rollback", "order"}
REDEMPTION_FIELDS = {"id", "object", "date", "customer_id", "tracking_id", "metadata", "result", "status", "order",
                     "channel", "customer", "related_object_type", "related_object_id"}
TRANSACTION_FIELDS = {"id", "source_id", "voucher_id", "campaign_id", "source", "reason", "type", "details",
                      "related_transaction_id", "created_at"}


def _payment_body(where, body):
    """True for a canned redemption, rollback or list answer, after checking its fields."""
    redemptions = []
    if "parent_redemption" in body:
        assert set(body) == REDEEM_FIELDS, where
        redemptions = [body["parent_redemption"], *body["redemptions"]]
    elif "parent_rollback" in body:
        assert set(body) == ROLLBACKS_FIELDS, where
        redemptions = [body["parent_rollback"], *body["rollbacks"]]
    elif body.get("data_ref") == "redemptions":
        assert set(body) == {"object", "data_ref", "redemptions", "total"}, where
        redemptions = body["redemptions"]
    elif body.get("data_ref") == "data":
        assert set(body) == {"object", "data_ref", "data", "has_more", "more_starting_after"}, where
        assert all(set(t) == TRANSACTION_FIELDS for t in body["data"]), where
        return True
    else:
        return False
    for redemption in redemptions:
        assert REDEMPTION_FIELDS <= set(redemption), f"{where}: {sorted(REDEMPTION_FIELDS - set(redemption))}"
        assert redemption["id"].startswith(("r_", "rr_", "rf_")), where
    return True


def test_the_simulator_answers_whole_voucher_and_balance_objects(voucherify):
    voucherify.reset()
    auth = {"X-App-Id": (FOLDER / "voucherify.app_id").read_text().strip(),
            "X-App-Token": (FOLDER / "voucherify.app_token").read_text().strip()}
    voucher = voucherify.http.get("/v1/vouchers/GIFT-ACTIVE-5000", headers=auth)
    assert voucher.status_code == 200, voucher.text
    assert set(voucher.json()) == VOUCHER_FIELDS
    loaded = voucherify.http.post("/v1/vouchers/GIFT-ACTIVE-5000/balance", json={"amount": 100}, headers=auth)
    assert loaded.status_code == 200, loaded.text
    assert set(loaded.json()) == BALANCE_FIELDS
    assert loaded.json()["operation_type"] == "MANUAL"


def test_issue_without_a_key_records_no_key(gateway, voucherify):
    response = post(gateway, "issue", {"amount": {"value": 5, "currency": "EUR"}, "customer": {"id": "c9"}})
    assert response.status_code == 200, response.text
    [call] = voucherify.calls()
    assert call["body"]["metadata"] == {"newstore_customer_id": "c9"}  # no `newstore_idempotence_key: null`
