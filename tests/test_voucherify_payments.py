"""Voucherify redemptions and rollbacks: the simulator over HTTP (what a payment mapping relies on).

Spec: voucherifyio/voucherify-openapi, reference/readonly-sdks/python/OpenAPI.json (POST /v1/redemptions,
GET /v1/redemptions[/{id}], POST /v1/redemptions/{id}/rollback[s], GET /v1/vouchers/{code}/transactions)
and documentation/guides/manage-stackable-discounts.mdx (parent and child redemptions).
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_psp_error, check_psp_response

FOLDER = ROOT / "simulators" / "voucherify"


@pytest.fixture(scope="module")
def voucherify(tmp_path_factory):
    yield from start_simulator("simulators.voucherify", tmp_path_factory)


@pytest.fixture
def sim(voucherify):
    voucherify.reset()
    return voucherify


AUTH = {"X-App-Id": (FOLDER / "voucherify.app_id").read_text().strip(),
        "X-App-Token": (FOLDER / "voucherify.app_token").read_text().strip()}


def redeem(sim, code, credits, amount=None, **extra):
    body = {"redeemables": [{"object": "voucher", "id": code, "gift": {"credits": credits}}],
            "order": {"amount": credits if amount is None else amount}, **extra}
    return sim.http.post("/v1/redemptions", json=body, headers=AUTH)


def balance(sim, code):
    response = sim.http.get(f"/v1/vouchers/{code}", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["gift"]["balance"]


def test_redeem_takes_the_credits_and_answers_parent_and_child(sim):
    response = redeem(sim, "GIFT-ACTIVE-5000", 3000, metadata={"newstore_key": "k1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"redemptions", "parent_redemption", "order", "inapplicable_redeemables", "skipped_redeemables"}
    parent, [child] = body["parent_redemption"], body["redemptions"]
    assert parent["id"].startswith("r_") and parent["result"] == "SUCCESS" and parent["object"] == "redemption"
    assert child["redemption"] == parent["id"] and child["amount"] == 3000 and child["gift"] == {"amount": 3000}
    assert child["voucher"]["code"] == "GIFT-ACTIVE-5000" and child["voucher"]["gift"]["balance"] == 2000
    assert child["metadata"] == {"newstore_key": "k1"}
    assert body["order"]["redemptions"][parent["id"]]["stacked"] == [child["id"]]
    assert balance(sim, "GIFT-ACTIVE-5000") == 2000
    # Both are readable afterwards, and the list finds the child by voucher code.
    assert sim.http.get(f"/v1/redemptions/{parent['id']}", headers=AUTH).json()["status"] == "SUCCEEDED"
    listed = sim.http.get("/v1/redemptions", headers=AUTH, params={
        "filters[voucher_code][conditions][$is]": "GIFT-ACTIVE-5000", "limit": "100"}).json()
    assert [r["id"] for r in listed["redemptions"]] == [child["id"]]
    assert listed["redemptions"][0]["metadata"] == {"newstore_key": "k1"}


def test_the_order_amount_caps_the_credits(sim):
    response = redeem(sim, "GIFT-ACTIVE-5000", 3000, amount=1200)
    assert response.status_code == 200, response.text
    assert response.json()["redemptions"][0]["amount"] == 1200
    assert balance(sim, "GIFT-ACTIVE-5000") == 3800


def test_insufficient_balance_is_refused_and_recorded_as_failed(sim):
    response = redeem(sim, "GIFT-PARTIAL-2500", 3000)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["key"] == "gift_amount_exceeded" and error["resource_type"] == "redemption"
    assert error["resource_id"].startswith("rf_")
    assert balance(sim, "GIFT-PARTIAL-2500") == 2500
    failed = sim.http.get(f"/v1/redemptions/{error['resource_id']}", headers=AUTH).json()
    assert failed["result"] == "FAILURE" and failed["failure_code"] == "gift_amount_exceeded"
    # An empty card is refused the same way, whatever the credits.
    assert redeem(sim, "GIFT-EMPTY-0000", 1).json()["key"] == "gift_amount_exceeded"


@pytest.mark.parametrize(("code", "status", "key"), [
    ("GIFT-DISABLED-1500", 400, "voucher_disabled"),
    ("GIFT-EXPIRED-1000", 400, "voucher_expired"),
    ("NO-SUCH-CODE", 404, "not_found"),
])
def test_unusable_vouchers_are_refused(sim, code, status, key):
    response = redeem(sim, code, 100)
    assert response.status_code == status, response.text
    assert response.json()["key"] == key and response.json()["code"] == status


def test_rollback_restores_the_balance_and_a_second_is_refused(sim):
    parent = redeem(sim, "GIFT-ACTIVE-5000", 3000).json()["parent_redemption"]["id"]
    assert balance(sim, "GIFT-ACTIVE-5000") == 2000
    response = sim.http.post(f"/v1/redemptions/{parent}/rollbacks", params={"reason": "refund"}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    [rollback] = body["rollbacks"]
    assert rollback["object"] == "redemption_rollback" and rollback["id"].startswith("rr_")
    assert rollback["amount"] == -3000 and rollback["reason"] == "refund"
    assert body["parent_rollback"]["redemption"] == parent and body["order"]["status"] == "CANCELED"
    assert balance(sim, "GIFT-ACTIVE-5000") == 5000
    assert sim.http.get(f"/v1/redemptions/{parent}", headers=AUTH).json()["status"] == "ROLLED_BACK"
    again = sim.http.post(f"/v1/redemptions/{parent}/rollbacks", headers=AUTH)
    assert again.status_code == 400 and again.json()["key"] == "already_rolled_back"
    assert balance(sim, "GIFT-ACTIVE-5000") == 5000


def test_a_child_or_a_stacked_redemption_is_not_rolled_back_alone(sim):
    body = redeem(sim, "GIFT-ACTIVE-5000", 1000).json()
    parent, child = body["parent_redemption"]["id"], body["redemptions"][0]["id"]
    for path in (f"/v1/redemptions/{child}/rollbacks", f"/v1/redemptions/{child}/rollback",
                 f"/v1/redemptions/{parent}/rollback"):
        response = sim.http.post(path, headers=AUTH)
        assert response.status_code == 400 and response.json()["key"] == "invalid_rollback_params", path
    assert balance(sim, "GIFT-ACTIVE-5000") == 4000
    unknown = sim.http.post("/v1/redemptions/r_0000000000000000/rollbacks", headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["resource_type"] == "redemption"


def test_rollback_takes_no_amount(sim):
    # RedemptionsRollbackCreateRequestBody has reason, tracking_id, customer, order, metadata: no amount.
    parent = redeem(sim, "GIFT-ACTIVE-5000", 3000).json()["parent_redemption"]["id"]
    response = sim.http.post(f"/v1/redemptions/{parent}/rollbacks", json={"amount": 500}, headers=AUTH)
    assert response.status_code == 400 and response.json()["key"] == "invalid_payload"
    assert balance(sim, "GIFT-ACTIVE-5000") == 2000


@pytest.mark.parametrize("body", [
    {"redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 10.5}}], "order": {"amount": 1050}},
    {"redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": "1000"}}], "order": {"amount": 1000}},
    {"redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 1000, "amount": 1}}], "order": {"amount": 1000}},
    {"redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 1000}}], "order": {"amount": 1000}, "colour": "red"},
    {"redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 1000}}], "order": {"amount": 10.0}},
    {"redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 1000}}], "order": {"total": 1000}},
    {"redeemables": [{"object": "gift_card", "id": "GIFT-ACTIVE-5000"}], "order": {"amount": 1000}},
    {"redeemables": [], "order": {"amount": 1000}},
])
def test_malformed_redemptions_are_refused(sim, body):
    response = sim.http.post("/v1/redemptions", json=body, headers=AUTH)
    assert response.status_code == 400 and response.json()["key"] == "invalid_payload", response.text
    assert balance(sim, "GIFT-ACTIVE-5000") == 5000


def test_gift_credits_need_an_order_amount(sim):
    no_order = sim.http.post("/v1/redemptions", headers=AUTH, json={
        "redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 100}}]})
    assert no_order.status_code == 400 and no_order.json()["key"] == "missing_order"
    no_amount = sim.http.post("/v1/redemptions", headers=AUTH, json={
        "redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 100}}], "order": {}})
    assert no_amount.status_code == 400 and no_amount.json()["key"] == "missing_amount"
    duplicated = sim.http.post("/v1/redemptions", headers=AUTH, json={"order": {"amount": 200}, "redeemables": [
        {"object": "voucher", "id": "GIFT-ACTIVE-5000"}, {"object": "voucher", "id": "GIFT-ACTIVE-5000"}]})
    assert duplicated.status_code == 400 and duplicated.json()["key"] == "duplicated_redeemables"
    assert balance(sim, "GIFT-ACTIVE-5000") == 5000


def test_redemptions_need_credentials_and_known_query_parameters(sim):
    body = {"redeemables": [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 100}}],
            "order": {"amount": 100}}
    assert sim.http.post("/v1/redemptions", json=body).status_code == 401
    assert sim.http.get("/v1/redemptions", params={"metadata.k": "x"}, headers=AUTH).status_code == 400
    assert sim.http.get("/v1/redemptions", params={"filters[metadata][conditions][$is]": "x"},
                        headers=AUTH).status_code == 400
    assert balance(sim, "GIFT-ACTIVE-5000") == 5000


def test_balance_credits_are_listed_as_transactions_with_their_source_id(sim):
    credit = sim.http.post("/v1/vouchers/GIFT-ACTIVE-5000/balance", headers=AUTH,
                           json={"amount": 500, "source_id": "ns-refund-1", "reason": "NewStore refund"})
    assert credit.status_code == 200, credit.text
    redeem(sim, "GIFT-ACTIVE-5000", 1000)
    listed = sim.http.get("/v1/vouchers/GIFT-ACTIVE-5000/transactions", params={"limit": "100"}, headers=AUTH).json()
    assert [t["type"] for t in listed["data"]] == ["CREDITS_REDEMPTION", "CREDITS_ADDITION"]
    addition = listed["data"][1]
    assert addition["source_id"] == "ns-refund-1" and addition["details"]["balance"]["amount"] == 500
    assert addition["details"]["balance"]["balance"] == 5500


# --- the gateway's payment operations against the simulator (mappings/voucherify.yaml) -------------


@pytest.fixture
def gateway(sim, tmp_path):
    config = write_config(tmp_path, {"voucherify": {
        "mapping": str(ROOT / "mappings" / "voucherify.yaml"), "vars": {"base_url": sim.url, "currency": "EUR"},
        "secrets": {"app_id": {"file": str(FOLDER / "voucherify.app_id")},
                    "app_token": {"file": str(FOLDER / "voucherify.app_token")}},
        "inbound": "none"}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def create(client, code, amount, key="pay-1"):
    return client.post("/voucherify/financial_instruments", json={
        "account_id": "acct-1", "idempotency_key": key, "retry_id": "r-1",
        "arguments": {"instrument": {"type": "captured", "identifier": code}, "amount": amount, "currency": "EUR",
                      "payment_method": "gift_card"}})


def act(client, operation, instrument, transactions, amount=None, key="act-1"):
    body = {"account_id": "acct-1", "instrument_id": instrument, "transactions": transactions, "idempotency_key": key}
    if amount is not None:
        body["arguments"] = {"amount": amount, "currency": "EUR"}
    return client.post(f"/voucherify/financial_instruments/{instrument}/_{operation}", json=body)


def card_balance(client, code):
    response = client.post("/voucherify/gift_card/balance", json={"identifier": {"number": code}})
    assert response.status_code == 200, response.text
    return Decimal(str(response.json()["value"]))


def provider_calls(sim):
    return [(c["method"], c["path"]) for c in sim.calls()]


def purchase(gateway, sim, code="GIFT-ACTIVE-5000", amount=30):
    response = create(gateway, code, amount)
    assert response.status_code == 200, response.text
    check_psp_response(response.json())
    [created] = response.json()
    sim.http.delete("/_sim/calls")
    return created


def test_create_redeems_at_once_and_capture_calls_nothing(gateway, sim):
    created = purchase(gateway, sim)
    assert created["instrument_id"].startswith("r_") and created["reason"] == "capture"
    assert Decimal(str(created["refund_amount"])) == 30 and Decimal(str(created["capture_amount"])) == 0
    assert card_balance(gateway, "GIFT-ACTIVE-5000") == 20
    sim.http.delete("/_sim/calls")
    captured = act(gateway, "capture", created["instrument_id"], [created], 30)
    assert captured.status_code == 200, captured.text
    assert captured.json() == []
    assert provider_calls(sim) == []


def test_the_redemption_carries_cents_and_our_reference(gateway, sim):
    sim.http.delete("/_sim/calls")
    assert create(gateway, "GIFT-ACTIVE-5000", 12.34).status_code == 200
    calls = sim.calls()
    assert [(c["method"], c["path"]) for c in calls] == [("GET", "/v1/redemptions"), ("POST", "/v1/redemptions")]
    body = calls[1]["body"]
    assert body["redeemables"] == [{"object": "voucher", "id": "GIFT-ACTIVE-5000", "gift": {"credits": 1234}}]
    assert body["order"]["amount"] == 1234 and body["order"]["source_id"]


def test_a_partial_refund_credits_the_card(gateway, sim):
    created = purchase(gateway, sim)
    refunded = act(gateway, "refund", created["instrument_id"], [created], 5)
    assert refunded.status_code == 200, refunded.text
    check_psp_response(refunded.json())
    [transaction] = refunded.json()
    assert Decimal(str(transaction["refund_amount"])) == -5 and transaction["reason"] == "refund"
    assert card_balance(gateway, "GIFT-ACTIVE-5000") == 25
    credit = [c for c in sim.calls() if c["path"].endswith("/balance")]
    assert [c["body"]["amount"] for c in credit] == [500]
    # The rest, later: a credit again (the redemption is not rolled back on top of the first credit).
    rest = act(gateway, "refund", created["instrument_id"], [created, transaction], 25, key="act-2")
    assert rest.status_code == 200, rest.text
    assert card_balance(gateway, "GIFT-ACTIVE-5000") == 50


def test_a_full_refund_rolls_the_redemption_back(gateway, sim):
    created = purchase(gateway, sim)
    refunded = act(gateway, "refund", created["instrument_id"], [created], 30)
    assert refunded.status_code == 200, refunded.text
    assert ("POST", f"/v1/redemptions/{created['instrument_id']}/rollbacks") in provider_calls(sim)
    assert card_balance(gateway, "GIFT-ACTIVE-5000") == 50
    redemption = sim.http.get(f"/v1/redemptions/{created['instrument_id']}", headers=AUTH).json()
    assert redemption["status"] == "ROLLED_BACK"


def test_refunding_more_than_captured_is_refused_without_a_provider_call(gateway, sim):
    created = purchase(gateway, sim)
    response = act(gateway, "refund", created["instrument_id"], [created], 30.01)
    assert response.status_code == 400, response.text
    check_psp_error(response.json())
    assert response.json()["error_code"] == "instrument_error"
    assert provider_calls(sim) == []
    assert card_balance(gateway, "GIFT-ACTIVE-5000") == 20


def test_revoke_gives_back_all_that_is_refundable(gateway, sim):
    created = purchase(gateway, sim)
    revoked = act(gateway, "revoke", created["instrument_id"], [created])
    assert revoked.status_code == 200, revoked.text
    check_psp_response(revoked.json())
    [transaction] = revoked.json()
    assert Decimal(str(transaction["refund_amount"])) == -30 and transaction["reason"] == "revoke"
    assert card_balance(gateway, "GIFT-ACTIVE-5000") == 50


def test_revoke_after_a_partial_refund_credits_the_rest(gateway, sim):
    created = purchase(gateway, sim)
    [refund] = act(gateway, "refund", created["instrument_id"], [created], 5).json()
    revoked = act(gateway, "revoke", created["instrument_id"], [created, refund], key="act-2")
    assert revoked.status_code == 200, revoked.text
    assert Decimal(str(revoked.json()[0]["refund_amount"])) == -25
    assert card_balance(gateway, "GIFT-ACTIVE-5000") == 50  # not 55: no rollback on top of the credit


def test_revoke_with_nothing_refundable_calls_nothing(gateway, sim):
    created = purchase(gateway, sim)
    refund = {**created, "transaction_id": "t-refund", "refund_amount": -30, "reason": "refund"}
    revoked = act(gateway, "revoke", created["instrument_id"], [created, refund])
    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == [] and provider_calls(sim) == []


@pytest.mark.parametrize(("code", "amount"), [
    ("GIFT-PARTIAL-2500", 30),     # 25.00 on the card
    ("GIFT-DISABLED-1500", 10),
    ("GIFT-EXPIRED-1000", 5),
    ("NO-SUCH-CODE", 5),
])
def test_unusable_cards_are_instrument_errors(gateway, sim, code, amount):
    response = create(gateway, code, amount)
    assert response.status_code == 400, response.text
    check_psp_error(response.json())
    assert response.json()["error_code"] == "instrument_error"
    assert not [c for c in sim.calls() if c["method"] == "POST"][1:]  # at most the refused redemption


@pytest.fixture
def hasty_gateway(sim, tmp_path):
    """A gateway whose webhooks give up after 2 s: a slow Voucherify leaves the outcome unknown."""
    config = write_config(tmp_path, {"voucherify": {
        "mapping": str(ROOT / "mappings" / "voucherify.yaml"), "vars": {"base_url": sim.url, "currency": "EUR"},
        "secrets": {"app_id": {"file": str(FOLDER / "voucherify.app_id")},
                    "app_token": {"file": str(FOLDER / "voucherify.app_token")}},
        "inbound": "none", "deadline": 2}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def _wait_for(predicate):
    for _ in range(100):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the simulator never got there")


def test_a_retry_after_an_unknown_outcome_does_not_redeem_twice(hasty_gateway, sim):
    # Lookup and redemption each take 1.5 s: the webhook's 2 s run out while Voucherify redeems.
    sim.fault("delay", seconds=1.5, times=2)
    first = create(hasty_gateway, "GIFT-ACTIVE-5000", 30, key="pay-retry")
    assert first.status_code == 500, first.text  # retry_safe: NewStore may retry with the same key
    assert first.json()["error_code"] == "retry_error"
    _wait_for(lambda: card(sim, "GIFT-ACTIVE-5000")["gift"]["balance"] == 2000)  # it did redeem
    again = create(hasty_gateway, "GIFT-ACTIVE-5000", 30, key="pay-retry")
    assert again.status_code == 200, again.text
    [created] = again.json()
    assert Decimal(str(created["refund_amount"])) == 30
    assert card(sim, "GIFT-ACTIVE-5000")["gift"]["balance"] == 2000  # not redeemed twice
    assert created["instrument_id"] == sim.http.get("/v1/redemptions", headers=AUTH, params={
        "filters[voucher_code][conditions][$is]": "GIFT-ACTIVE-5000"}).json()["redemptions"][0]["redemption"]
    # Another key is another payment.
    assert create(hasty_gateway, "GIFT-ACTIVE-5000", 5, key="pay-other").status_code == 200
    assert card(sim, "GIFT-ACTIVE-5000")["gift"]["balance"] == 1500


def test_a_retried_partial_refund_credits_once(hasty_gateway, sim):
    created = purchase(hasty_gateway, sim)
    # Redemption lookup, transactions lookup, credit: 0.9 s each, the credit lands after the deadline.
    sim.fault("delay", seconds=0.9, times=3)
    first = act(hasty_gateway, "refund", created["instrument_id"], [created], 5, key="refund-retry")
    assert first.status_code == 500 and first.json()["error_code"] == "retry_error", first.text
    _wait_for(lambda: card(sim, "GIFT-ACTIVE-5000")["gift"]["balance"] == 2500)
    again = act(hasty_gateway, "refund", created["instrument_id"], [created], 5, key="refund-retry")
    assert again.status_code == 200, again.text
    assert card(sim, "GIFT-ACTIVE-5000")["gift"]["balance"] == 2500  # credited once


def card(sim, code):
    return next(c for c in sim.cards() if c["code"] == code)
