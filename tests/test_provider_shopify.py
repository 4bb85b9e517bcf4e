"""The Shopify mapping against the Shopify simulator (GraphQL, OAuth client credentials), over HTTP."""

from __future__ import annotations

import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_error, check_response

FOLDER = ROOT / "simulators" / "shopify"


@pytest.fixture(scope="module")
def shopify(tmp_path_factory):
    yield from start_simulator("simulators.shopify", tmp_path_factory)


@pytest.fixture
def gateway(shopify, tmp_path):
    shopify.reset()
    config = write_config(tmp_path, {"shopify": {
        "mapping": str(ROOT / "mappings" / "shopify.yaml"), "vars": {"shop_url": shopify.url},
        "secrets": {"client_id": {"file": str(FOLDER / "shopify.client_id")},
                    "client_secret": {"file": str(FOLDER / "shopify.client_secret")}},
        "inbound": "none"}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def post(client, operation, body):
    return client.post(f"/shopify/gift_card/{operation}", json=body)


def _graphql_calls(shopify):
    return [c for c in shopify.calls() if c["path"].endswith("/graphql.json")]


def test_balance_fetches_one_token_and_reads_decimal_strings(gateway, shopify):
    for _ in range(2):
        response = post(gateway, "balance", {"identifier": {"number": "gift5000enabled"}})
        assert response.status_code == 200, response.text
        assert response.json() == {"value": 50.0, "currency": "USD"}
    token_calls = [c for c in shopify.calls() if c["path"] == "/admin/oauth/access_token"]
    assert len(token_calls) == 1  # cached for the next request
    call = _graphql_calls(shopify)[0]
    assert call["path"] == "/admin/api/2025-10/graphql.json"
    assert call["headers"]["x-shopify-access-token"] == "***"
    assert call["body"]["variables"] == {"q": "gift5000enabled"}


@pytest.mark.parametrize(("code", "error"), [("NOSUCHCARD123", "card_not_found"), ("GIFTDISABLED15", "card_inactive")])
def test_balance_errors_inside_http_200(gateway, code, error):
    response = post(gateway, "balance", {"identifier": {"number": code}})
    assert response.status_code == 400, response.text
    check_error(response.json())
    assert response.json()["error_code"] == error
    assert response.json()["details"]["upstream_status"] == 200


def test_issue_creates_a_card_with_a_decimal_string(gateway, shopify):
    body = {"amount": {"value": 25.5, "currency": "USD"}, "customer": {"id": "c1"}, "idempotence_key": "shop-1"}
    response = post(gateway, "issue", body)
    assert response.status_code == 200, response.text
    check_response("issue", response.json())
    create = _graphql_calls(shopify)[-1]
    assert create["body"]["variables"]["input"]["initialValue"] == "25.50"
    code = response.json()["identifier"]["number"]
    assert post(gateway, "balance", {"identifier": {"number": code}}).json() == {"value": 25.5, "currency": "USD"}


def test_activate_creates_the_printed_card_then_refuses_it_again(gateway):
    body = {"card_number": "PHYS-1234-5678-90", "amount": {"value": 40, "currency": "USD"}, "customer": {"id": "c1"}}
    response = post(gateway, "activate", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"identifier": {"number": "PHYS1234567890"}}
    again = post(gateway, "activate", body)
    assert again.status_code == 400 and again.json()["error_code"] == "card_already_active"


def test_deactivate_looks_up_then_deactivates(gateway, shopify):
    response = post(gateway, "deactivate", {"card_number": "GIFT2500PARTIAL"})
    assert response.status_code == 200, response.text
    check_response("deactivate", response.json())
    lookup, deactivate = _graphql_calls(shopify)
    assert deactivate["body"]["variables"] == {"id": "gid://shopify/GiftCard/1002"}
    again = post(gateway, "deactivate", {"card_number": "GIFT2500PARTIAL"})
    assert again.status_code == 400 and again.json()["error_code"] == "card_inactive"


def test_throttled_is_a_retryable_503(gateway, shopify):
    post(gateway, "balance", {"identifier": {"number": "GIFT5000ENABLED"}})  # the token is fetched
    shopify.fault("status", status=429)
    response = post(gateway, "balance", {"identifier": {"number": "GIFT5000ENABLED"}})
    assert response.status_code == 503 and response.json()["error_code"] == "rate_limit"


def test_a_revoked_token_is_replaced_once(gateway, shopify):
    post(gateway, "balance", {"identifier": {"number": "GIFT5000ENABLED"}})
    shopify.http.post("/_sim/reset").raise_for_status()  # forgets minted tokens
    response = post(gateway, "balance", {"identifier": {"number": "GIFT5000ENABLED"}})
    assert response.status_code == 200, response.text
    assert len([c for c in shopify.calls() if c["path"] == "/admin/oauth/access_token"]) == 1
