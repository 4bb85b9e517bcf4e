"""The provider simulators reject what the real APIs reject: a mapping that passes against them
cannot be sending something the provider would refuse (missing auth, unknown fields, a float
where an integer is required, a wrong API version)."""

from __future__ import annotations

import pytest

from .conftest import ROOT, start_simulator

KEYS = ROOT / "simulators"


@pytest.fixture(scope="module")
def sims(tmp_path_factory):
    started = {}
    gens = []
    for name in ("adyen", "square", "voucherify", "shopify", "radial"):
        gen = start_simulator(f"simulators.{name}", tmp_path_factory)
        started[name] = next(gen)
        gens.append(gen)
    yield started
    for gen in gens:
        for _ in gen:
            pass


def _read(name: str, file: str) -> str:
    return (KEYS / name / file).read_text().strip()


ADYEN = "/pal/servlet/StoredValue/v46/checkBalance"
ADYEN_BODY = {"merchantAccount": "TestMerchantGateway", "reference": "r",
              "paymentMethod": {"type": "givex", "number": "6036280000000001001", "securityCode": "41093"}}


def test_adyen(sims):
    http, key = sims["adyen"].http, _read("adyen", "adyen.key")
    assert http.post(ADYEN, json=ADYEN_BODY).status_code == 401
    assert http.post(ADYEN, json=ADYEN_BODY, headers={"X-API-Key": key}).status_code == 200
    assert http.post(ADYEN, json={**ADYEN_BODY, "merchantAcount": "x"}, headers={"X-API-Key": key}).status_code >= 400
    issue = {"merchantAccount": "TestMerchantGateway", "reference": "r", "paymentMethod": {"type": "givex"},
             "amount": {"currency": "USD", "value": 10.5}}
    bad = http.post("/pal/servlet/StoredValue/v46/issue", json=issue, headers={"X-API-Key": key})
    # The v46 file lists 200, 400, 401, 403, 500: a rejected request is a 400 ServiceError.
    assert bad.status_code == 400 and bad.json()["errorCode"] == "137"
    assert set(bad.json()) == {"status", "errorCode", "message", "errorType", "pspReference"}
    assert bad.json()["status"] == 400 and bad.json()["errorType"] == "validation"


@pytest.mark.parametrize("path", ["checkBalance", "changeStatus"])
def test_adyen_refuses_null_where_the_spec_wants_a_string(sims, path):
    # paymentMethod is {type: object, additionalProperties: {type: string}}: null is not a string.
    http, key = sims["adyen"].http, _read("adyen", "adyen.key")
    body = {**ADYEN_BODY, "paymentMethod": {**ADYEN_BODY["paymentMethod"], "securityCode": None}}
    if path == "changeStatus":
        body["status"] = "inactive"
    bad = http.post(f"/pal/servlet/StoredValue/v46/{path}", json=body, headers={"X-API-Key": key})
    assert bad.status_code == 400, bad.text
    assert bad.json()["errorCode"] == "702"
    assert "$.paymentMethod.securityCode" in bad.json()["message"]
    # Left out instead, the same request is processed.
    del body["paymentMethod"]["securityCode"]
    assert http.post(f"/pal/servlet/StoredValue/v46/{path}", json=body, headers={"X-API-Key": key}).status_code == 200


def test_adyen_never_answers_422(sims):
    http, key = sims["adyen"].http, _read("adyen", "adyen.key")
    base = "/pal/servlet/StoredValue/v46"
    auth = {"X-API-Key": key}
    statuses = {
        http.post(f"{base}/checkBalance", json={**ADYEN_BODY, "reference": "r" * 81}, headers=auth).status_code,
        http.post(f"{base}/checkBalance", json={k: v for k, v in ADYEN_BODY.items() if k != "reference"},
                  headers=auth).status_code,
        http.post(f"{base}/checkBalance", json={**ADYEN_BODY, "paymentMethod": {"type": "visa", "number": "4111"}},
                  headers=auth).status_code,
        http.post(f"{base}/voidTransaction", json={"merchantAccount": "TestMerchantGateway",
                                                   "originalReference": "NOPE"}, headers=auth).status_code,
        http.post(f"{base}/load", json={**ADYEN_BODY}, headers=auth).status_code,
    }
    assert statuses == {400}


def test_square(sims):
    http, token = sims["square"].http, _read("square", "square.token")
    auth = {"Authorization": f"Bearer {token}", "Square-Version": "2025-08-20"}
    body = {"gan": "7783320000001111"}
    assert http.post("/v2/gift-cards/from-gan", json=body, headers={"Square-Version": "2025-08-20"}).status_code == 401
    assert http.post("/v2/gift-cards/from-gan", json=body, headers=auth).status_code == 200
    assert http.post("/v2/gift-cards/from-gan", json=body, headers={**auth, "Square-Version": "20250820"}).status_code == 400
    assert http.post("/v2/gift-cards/from-gan", json={**body, "gann": "x"}, headers=auth).status_code == 400
    activity = {"idempotency_key": "k", "gift_card_activity": {
        "type": "ACTIVATE", "location_id": "LSIMMAIN00001", "gift_card_gan": "7783320000005551",
        "activate_activity_details": {"amount_money": {"amount": 10.5, "currency": "USD"}, "buyer_payment_instrument_ids": ["x"]}}}
    bad = http.post("/v2/gift-cards/activities", json=activity, headers=auth)
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "EXPECTED_INTEGER"


def test_voucherify(sims):
    http = sims["voucherify"].http
    auth = {"X-App-Id": _read("voucherify", "voucherify.app_id"), "X-App-Token": _read("voucherify", "voucherify.app_token")}
    assert http.get("/v1/vouchers/GIFT-ACTIVE-5000").status_code == 401
    assert http.get("/v1/vouchers/GIFT-ACTIVE-5000", headers=auth).status_code == 200
    bad = http.post("/v1/vouchers", json={"type": "GIFT_VOUCHER", "gift": {"amount": 10.5}}, headers=auth)
    assert bad.status_code == 400
    assert http.post("/v1/vouchers", json={"type": "GIFT_VOUCHER", "gift": {"amount": 1050}, "colour": "red"},
                     headers=auth).status_code == 400


def test_shopify(sims):
    http = sims["shopify"].http
    token = {"X-Shopify-Access-Token": _read("shopify", "shopify.token")}
    query = {"query": "{ giftCards(first: 1, query: \"GIFT5000ENABLED\") { nodes { id } } }"}
    assert http.post("/admin/api/2025-10/graphql.json", json=query).status_code == 401
    assert http.post("/admin/api/2025-10/graphql.json", json=query, headers=token).status_code == 200
    assert http.post("/admin/api/1999-01/graphql.json", json=query, headers=token).status_code == 404
    create = {"query": "mutation($i: GiftCardCreateInput!) { giftCardCreate(input: $i) { giftCardCode } }",
              "variables": {"i": {"initialValue": 25.0}}}
    numeric = http.post("/admin/api/2025-10/graphql.json", json=create, headers=token).json()
    assert "errors" in numeric  # Decimal values are strings in Shopify's API
    wrong_secret = http.post("/admin/oauth/access_token", data={"grant_type": "client_credentials",
                             "client_id": _read("shopify", "shopify.client_id"), "client_secret": "wrong"})
    assert wrong_secret.status_code == 401


def test_radial(sims):
    http, key = sims["radial"].http, _read("radial", "radial.key")
    lookup = ('<TenderTypeLookupRequest xmlns="http://api.gsicommerce.com/schema/checkout/1.0">'
              '<PaymentAccountUniqueId isToken="false">6035710000000018</PaymentAccountUniqueId>'
              '<TenderClass>StoredValue</TenderClass><CurrencyCode>USD</CurrencyCode></TenderTypeLookupRequest>')
    path = "/v1.0/stores/TMSUS/payments/tendertype/lookup.xml"
    xml = {"Content-Type": "application/xml"}
    assert http.post(path, content=lookup, headers=xml).status_code == 401
    assert http.post(path, content=lookup, headers={**xml, "apiKey": key}).status_code == 200
    assert http.post(path, content=lookup.replace("checkout/1.0", "checkout/9.9"), headers={**xml, "apiKey": key}).status_code == 400
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]>' + lookup
    assert http.post(path, content=bomb, headers={**xml, "apiKey": key}).status_code == 400
