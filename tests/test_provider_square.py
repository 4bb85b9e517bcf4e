"""The Square mapping against the Square simulator, over HTTP."""

from __future__ import annotations

import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_error, check_response

TOKEN_FILE = ROOT / "simulators" / "square" / "square.token"


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    yield from start_simulator("simulators.square", tmp_path_factory)


@pytest.fixture
def gateway(square, tmp_path):
    square.reset()
    config = write_config(tmp_path, {"square": {
        "mapping": str(ROOT / "mappings" / "square.yaml"),
        "vars": {"base_url": square.url, "location_id": "LSIMMAIN00001"},
        "secrets": {"access_token": {"file": str(TOKEN_FILE)}}, "inbound": "none"}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def post(client, operation, body):
    return client.post(f"/square/gift_card/{operation}", json=body)


def test_balance(gateway, square):
    response = post(gateway, "balance", {"identifier": {"number": "7783 3200 0000 1111"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 50.00, "currency": "USD"}
    [call] = square.calls()
    assert call["path"] == "/v2/gift-cards/from-gan"
    assert call["headers"]["square-version"] == "2025-08-20"
    assert call["headers"]["authorization"] == "***"


@pytest.mark.parametrize(("gan", "code", "status"), [
    ("7783329999999999", "card_not_found", 404),
    ("7783320000003333", "card_inactive", 200),   # DEACTIVATED
    ("7783320000004444", "card_inactive", 200),   # BLOCKED
    ("7783320000005551", "card_inactive", 200),   # PENDING
])
def test_balance_errors(gateway, gan, code, status):
    response = post(gateway, "balance", {"identifier": {"number": gan}})
    assert response.status_code == 400, response.text
    check_error(response.json())
    assert response.json()["error_code"] == code
    assert response.json()["details"]["upstream_status"] == status


def test_issue_is_create_then_activate(gateway, square):
    body = {"amount": {"value": 30, "currency": "USD"}, "customer": {"id": "c1"}, "idempotence_key": "sq-issue-1"}
    response = post(gateway, "issue", body)
    assert response.status_code == 200, response.text
    check_response("issue", response.json())
    create, activate = square.calls()
    assert create["path"] == "/v2/gift-cards" and create["body"]["idempotency_key"] == "sq-issue-1-create"
    assert activate["body"]["idempotency_key"] == "sq-issue-1-activate"
    details = activate["body"]["gift_card_activity"]["activate_activity_details"]
    assert details["amount_money"] == {"amount": 3000, "currency": "USD"}
    gan = response.json()["identifier"]["number"]
    balance = post(gateway, "balance", {"identifier": {"number": gan}})
    assert balance.json() == {"value": 30.00, "currency": "USD"}


def test_issue_without_a_newstore_key_still_sends_square_keys(gateway, square):
    response = post(gateway, "issue", {"amount": {"value": 5, "currency": "USD"}, "customer": {"id": "c1"}})
    assert response.status_code == 200, response.text
    keys = [c["body"]["idempotency_key"] for c in square.calls()]
    assert keys[0].endswith("-create") and keys[1].endswith("-activate") and keys[0][:32] == keys[1][:32]


def test_activate_a_pending_card_then_again(gateway, square):
    body = {"card_number": "7783320000005552", "amount": {"value": 20, "currency": "USD"}, "customer": {"id": "c1"}}
    response = post(gateway, "activate", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"identifier": {"number": "7783320000005552"}}
    again = post(gateway, "activate", body)
    assert again.status_code == 400 and again.json()["error_code"] == "card_already_active"


def test_activate_in_another_currency(gateway):
    body = {"card_number": "7783320000005553", "amount": {"value": 20, "currency": "EUR"}, "customer": {"id": "c1"}}
    response = post(gateway, "activate", body)
    assert response.status_code == 400 and response.json()["error_code"] == "currency_mismatch"


def test_deactivate_then_again(gateway):
    response = post(gateway, "deactivate", {"card_number": "7783320000002222"})
    assert response.status_code == 200, response.text
    check_response("deactivate", response.json())
    again = post(gateway, "deactivate", {"card_number": "7783320000002222"})
    assert again.status_code == 400 and again.json()["error_code"] == "card_inactive"


def test_rate_limited(gateway, square):
    square.fault("status", status=429)
    response = post(gateway, "balance", {"identifier": {"number": "7783320000001111"}})
    assert response.status_code == 503 and response.json()["error_code"] == "rate_limit"


# --- canned answers and simulator replies carry what Square always returns ---------------------
# square/connect-api-specification, api.json: GiftCard (id, type, gan_source, state, balance_money,
# gan, created_at; customer_ids only once linked) and GiftCardActivity (id, type, location_id,
# created_at, gift_card_id, gift_card_gan, gift_card_balance_money, <type>_activity_details).

GIFT_CARD_FIELDS = {"id", "type", "gan_source", "state", "balance_money", "gan", "created_at"}
ACTIVITY_FIELDS = {"id", "type", "location_id", "created_at", "gift_card_id", "gift_card_gan", "gift_card_balance_money"}


def _check_square_body(where, body):
    if "gift_card" in body:
        card = body["gift_card"]
        assert GIFT_CARD_FIELDS <= set(card), f"{where}: a gift card without {sorted(GIFT_CARD_FIELDS - set(card))}"
        assert set(card["balance_money"]) == {"amount", "currency"}, where
        return 1
    if "gift_card_activity" in body:
        activity = body["gift_card_activity"]
        expected = ACTIVITY_FIELDS | {f"{activity['type'].lower()}_activity_details"}
        assert expected <= set(activity), f"{where}: an activity without {sorted(expected - set(activity))}"
        return 1
    return 0


def test_canned_answers_in_the_offline_cases_are_whole_square_objects():
    import yaml

    seen = 0
    for case in yaml.safe_load((ROOT / "mappings" / "square.test.yaml").read_text())["cases"]:
        for step, answer in case.get("provider", {}).items():
            if "fault" not in answer and 200 <= answer.get("status", 200) < 300:
                seen += _check_square_body(f"{case['name']} / {step}", answer["body"])
    assert seen >= 11


def test_the_simulator_answers_whole_square_objects(square):
    square.reset()
    auth = {"Authorization": f"Bearer {TOKEN_FILE.read_text().strip()}", "Square-Version": "2025-08-20"}
    card = square.http.post("/v2/gift-cards/from-gan", json={"gan": "7783320000001111"}, headers=auth)
    assert card.status_code == 200, card.text
    assert _check_square_body("from-gan", card.json()) == 1
    activity = {"idempotency_key": "shape-1", "gift_card_activity": {
        "type": "DEACTIVATE", "location_id": "LSIMMAIN00001", "gift_card_gan": "7783320000002222",
        "deactivate_activity_details": {"reason": "SUSPICIOUS_ACTIVITY"}}}
    made = square.http.post("/v2/gift-cards/activities", json=activity, headers=auth)
    assert made.status_code == 200, made.text
    assert _check_square_body("activities", made.json()) == 1
