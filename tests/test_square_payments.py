"""Square gift cards as a payment method.

The simulator's Gift Card Activities for spending and crediting a card (REDEEM, REFUND,
ADJUST_INCREMENT / ADJUST_DECREMENT), over HTTP, as strict as Square's API
(square/connect-api-specification, api.json: CreateGiftCardActivity, GiftCardActivityRedeem,
GiftCardActivityRefund, GiftCardActivityAdjustIncrement/Decrement, ErrorCode); then NewStore's
payment webhooks through mappings/square.yaml ("redeem at once") against it.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_psp_error, check_psp_response

TOKEN_FILE = ROOT / "simulators" / "square" / "square.token"
ACTIVITIES = "/v2/gift-cards/activities"
LOCATION = "LSIMMAIN00001"
CARD = "7783320000001111"  # seeded ACTIVE, 5000 USD
OTHER_CARD = "7783320000002222"  # seeded ACTIVE, 2500 USD


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    yield from start_simulator("simulators.square", tmp_path_factory)


@pytest.fixture
def sim(square):
    square.reset()
    return square


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN_FILE.read_text().strip()}", "Square-Version": "2025-08-20"}


def activity(sim, key: str, kind: str, details: dict[str, Any], *, gan: str = CARD, **extra: Any):
    body = {"idempotency_key": key, "gift_card_activity": {
        "type": kind, "location_id": LOCATION, "gift_card_gan": gan, f"{kind.lower()}_activity_details": details,
        **extra}}
    return sim.http.post(ACTIVITIES, json=body, headers=_auth())


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


def balance(sim, gan: str = CARD) -> int:
    answer = sim.http.post("/v2/gift-cards/from-gan", json={"gan": gan}, headers=_auth())
    assert answer.status_code == 200, answer.text
    return answer.json()["gift_card"]["balance_money"]["amount"]


def only_error(response) -> dict[str, Any]:
    [error] = response.json()["errors"]
    assert {"category", "code"} <= set(error) <= {"category", "code", "detail", "field"}
    return error


def test_redeem_takes_the_amount_off_the_balance(sim):
    made = activity(sim, "r-1", "REDEEM", {"amount_money": usd(3000), "reference_id": "order-17"})
    assert made.status_code == 200, made.text
    act = made.json()["gift_card_activity"]
    assert act["id"].startswith("gcact_") and act["type"] == "REDEEM"
    assert act["gift_card_gan"] == CARD and act["gift_card_id"].startswith("gftc:")
    assert act["gift_card_balance_money"] == usd(2000)
    # Gift cards redeemed through the Activities API are always COMPLETED (a read-only field).
    assert act["redeem_activity_details"] == {"amount_money": usd(3000), "reference_id": "order-17",
                                              "status": "COMPLETED"}
    assert balance(sim) == 2000


@pytest.mark.parametrize("read_only", [{"payment_id": "pay-1"}, {"status": "COMPLETED"}])
def test_redeem_refuses_fields_only_square_fills(sim, read_only):
    # payment_id and status are readOnly in GiftCardActivityRedeem: a third-party (custom processing)
    # redemption sends amount_money and at most reference_id.
    made = activity(sim, "r-ro", "REDEEM", {"amount_money": usd(100), **read_only})
    assert made.status_code == 400
    error = only_error(made)
    assert error["code"] == "BAD_REQUEST"
    assert error["field"] == f"gift_card_activity.redeem_activity_details.{next(iter(read_only))}"
    assert balance(sim) == 5000


@pytest.mark.parametrize(("money", "code"), [
    ({"amount": 30.5, "currency": "USD"}, "EXPECTED_INTEGER"),
    ({"amount": "3000", "currency": "USD"}, "EXPECTED_INTEGER"),
    ({"amount": 0, "currency": "USD"}, "VALUE_TOO_LOW"),
    ({"amount": -100, "currency": "USD"}, "VALUE_TOO_LOW"),
    ({"amount": 100, "currency": "XYZ"}, "INVALID_ENUM_VALUE"),
    ({"amount": 100}, "MISSING_REQUIRED_PARAMETER"),
])
def test_redeem_refuses_bad_amounts(sim, money, code):
    made = activity(sim, "r-bad", "REDEEM", {"amount_money": money})
    assert made.status_code == 400
    assert only_error(made)["code"] == code
    assert balance(sim) == 5000


def test_redeem_more_than_the_balance_is_insufficient_funds(sim):
    made = activity(sim, "r-2", "REDEEM", {"amount_money": usd(5001)})
    assert made.status_code == 400
    error = only_error(made)
    assert (error["category"], error["code"]) == ("PAYMENT_METHOD_ERROR", "INSUFFICIENT_FUNDS")
    assert balance(sim) == 5000
    # The whole balance is fine.
    assert activity(sim, "r-3", "REDEEM", {"amount_money": usd(5000)}).status_code == 200
    assert balance(sim) == 0


def test_redeem_in_another_currency(sim):
    made = activity(sim, "r-eur", "REDEEM", {"amount_money": {"amount": 100, "currency": "EUR"}})
    assert made.status_code == 400 and only_error(made)["code"] == "CURRENCY_MISMATCH"


@pytest.mark.parametrize("gan", ["7783320000003333", "7783320000004444", "7783320000005551"])
def test_an_inactive_card_cannot_be_redeemed_or_decremented(sim, gan):
    # DEACTIVATED, BLOCKED, PENDING: "A gift card must be in the ACTIVE state to pay for a purchase."
    made = activity(sim, "r-in", "REDEEM", {"amount_money": usd(100)}, gan=gan)
    assert made.status_code == 400
    error = only_error(made)
    assert error["code"] == "BAD_REQUEST" and "field" not in error and "ACTIVE" in error["detail"]
    before = balance(sim, gan)
    assert activity(sim, "r-in2", "ADJUST_DECREMENT", {"amount_money": usd(100), "reason": "SUPPORT_ISSUE"},
                    gan=gan).status_code == 400
    assert balance(sim, gan) == before


def test_an_inactive_card_cannot_take_a_refund(sim):
    redeem = activity(sim, "r-d", "REDEEM", {"amount_money": usd(1000)}, gan=OTHER_CARD).json()["gift_card_activity"]
    sim.http.post("/_sim/cards", json={"gan": OTHER_CARD, "state": "DEACTIVATED", "amount": 1500,
                                       "type": "PHYSICAL"}).raise_for_status()
    refund = activity(sim, "f-d", "REFUND", {"redeem_activity_id": redeem["id"], "amount_money": usd(500)},
                      gan=OTHER_CARD)
    assert refund.status_code == 400 and only_error(refund)["code"] == "BAD_REQUEST"
    assert balance(sim, OTHER_CARD) == 1500


def test_unknown_card(sim):
    made = activity(sim, "r-nf", "REDEEM", {"amount_money": usd(100)}, gan="7783329999999999")
    assert made.status_code == 404 and only_error(made)["code"] == "NOT_FOUND"


def test_refund_of_a_redeem_gives_back_up_to_what_it_took(sim):
    redeem = activity(sim, "r-4", "REDEEM", {"amount_money": usd(3000)}).json()["gift_card_activity"]
    assert balance(sim) == 2000
    refund = activity(sim, "f-1", "REFUND", {"redeem_activity_id": redeem["id"], "amount_money": usd(500),
                                             "reference_id": "refund-1"})
    assert refund.status_code == 200, refund.text
    act = refund.json()["gift_card_activity"]
    assert act["type"] == "REFUND" and act["gift_card_balance_money"] == usd(2500)
    assert act["refund_activity_details"] == {"redeem_activity_id": redeem["id"], "amount_money": usd(500),
                                              "reference_id": "refund-1"}
    assert balance(sim) == 2500
    # 2500 of the 3000 are left to refund: 2501 is too much, across refunds.
    too_much = activity(sim, "f-2", "REFUND", {"redeem_activity_id": redeem["id"], "amount_money": usd(2501)})
    assert too_much.status_code == 400
    error = only_error(too_much)
    assert (error["category"], error["code"]) == ("REFUND_ERROR", "REFUND_AMOUNT_INVALID")
    assert balance(sim) == 2500
    assert activity(sim, "f-3", "REFUND", {"redeem_activity_id": redeem["id"],
                                           "amount_money": usd(2500)}).status_code == 200
    assert balance(sim) == 5000
    spent = activity(sim, "f-4", "REFUND", {"redeem_activity_id": redeem["id"], "amount_money": usd(1)})
    assert spent.status_code == 400 and only_error(spent)["code"] == "REFUND_AMOUNT_INVALID"


@pytest.mark.parametrize(("details", "code", "field"), [
    ({"amount_money": usd(100)}, "MISSING_REQUIRED_PARAMETER", "redeem_activity_id"),
    ({"redeem_activity_id": "REDEEM"}, "MISSING_REQUIRED_PARAMETER", "amount_money"),
    ({"redeem_activity_id": "REDEEM", "amount_money": usd(100), "payment_id": "p"}, "BAD_REQUEST", "payment_id"),
    ({"redeem_activity_id": "REDEEM", "amount_money": usd(0)}, "VALUE_TOO_LOW", "amount_money.amount"),
    ({"redeem_activity_id": 17, "amount_money": usd(100)}, "EXPECTED_STRING", "redeem_activity_id"),
])
def test_refund_needs_a_redeem_and_an_amount(sim, details, code, field):
    redeem = activity(sim, "r-5", "REDEEM", {"amount_money": usd(1000)}).json()["gift_card_activity"]
    if details.get("redeem_activity_id") == "REDEEM":
        details = {**details, "redeem_activity_id": redeem["id"]}
    made = activity(sim, "f-bad", "REFUND", details)
    assert made.status_code == 400
    error = only_error(made)
    assert (error["code"], error["field"]) == (code, f"gift_card_activity.refund_activity_details.{field}")
    assert balance(sim) == 4000


def test_refund_must_name_a_redeem_of_the_same_card(sim):
    redeem = activity(sim, "r-6", "REDEEM", {"amount_money": usd(1000)}).json()["gift_card_activity"]
    elsewhere = activity(sim, "f-5", "REFUND", {"redeem_activity_id": redeem["id"], "amount_money": usd(100)},
                         gan=OTHER_CARD)
    assert elsewhere.status_code == 400 and only_error(elsewhere)["code"] == "INVALID_VALUE"
    unknown = activity(sim, "f-6", "REFUND", {"redeem_activity_id": "gcact_" + "0" * 32, "amount_money": usd(100)})
    assert unknown.status_code == 404 and only_error(unknown)["code"] == "NOT_FOUND"
    # An activity that is not a REDEEM cannot be refunded either.
    load = activity(sim, "l-1", "LOAD", {"amount_money": usd(100), "buyer_payment_instrument_ids": ["x"]})
    not_redeem = activity(sim, "f-7", "REFUND", {"redeem_activity_id": load.json()["gift_card_activity"]["id"],
                                                 "amount_money": usd(100)})
    assert not_redeem.status_code == 404
    assert balance(sim) == 4100 and balance(sim, OTHER_CARD) == 2500


def test_same_key_same_body_replays_the_same_activity(sim):
    details = {"amount_money": usd(1200), "reference_id": "order-9"}
    first = activity(sim, "r-same", "REDEEM", details)
    again = activity(sim, "r-same", "REDEEM", details)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content  # the same activity id, byte for byte
    assert balance(sim) == 3800  # redeemed once


def test_same_key_other_body_is_idempotency_key_reused(sim):
    assert activity(sim, "r-k", "REDEEM", {"amount_money": usd(1000)}).status_code == 200
    other = activity(sim, "r-k", "REDEEM", {"amount_money": usd(1001)})
    assert other.status_code == 400
    error = only_error(other)
    assert (error["code"], error["field"]) == ("IDEMPOTENCY_KEY_REUSED", "idempotency_key")
    assert balance(sim) == 4000


def test_a_refused_redeem_replays_its_refusal(sim):
    first = activity(sim, "r-nsf", "REDEEM", {"amount_money": usd(9000)})
    assert first.status_code == 400
    sim.http.post("/_sim/cards", json={"gan": CARD, "state": "ACTIVE", "amount": 10000}).raise_for_status()
    again = activity(sim, "r-nsf", "REDEEM", {"amount_money": usd(9000)})
    assert again.status_code == 400 and again.content == first.content
    assert balance(sim) == 10000


def test_adjust_increment_and_decrement(sim):
    up = activity(sim, "a-1", "ADJUST_INCREMENT", {"amount_money": usd(250), "reason": "COMPLIMENTARY"})
    assert up.status_code == 200, up.text
    assert up.json()["gift_card_activity"]["gift_card_balance_money"] == usd(5250)
    down = activity(sim, "a-2", "ADJUST_DECREMENT", {"amount_money": usd(5250), "reason": "SUPPORT_ISSUE"})
    assert down.status_code == 200 and balance(sim) == 0
    more = activity(sim, "a-3", "ADJUST_DECREMENT", {"amount_money": usd(1), "reason": "SUPPORT_ISSUE"})
    assert more.status_code == 400 and only_error(more)["code"] == "INSUFFICIENT_FUNDS"
    no_reason = activity(sim, "a-4", "ADJUST_INCREMENT", {"amount_money": usd(1)})
    assert no_reason.status_code == 400 and only_error(no_reason)["code"] == "MISSING_REQUIRED_PARAMETER"
    # Each type has its own reasons: COMPLIMENTARY only increments.
    wrong = activity(sim, "a-5", "ADJUST_DECREMENT", {"amount_money": usd(1), "reason": "COMPLIMENTARY"})
    assert wrong.status_code == 400 and only_error(wrong)["code"] == "INVALID_ENUM_VALUE"


def test_details_of_another_type_conflict(sim):
    made = activity(sim, "r-c", "REDEEM", {"amount_money": usd(100)},
                    refund_activity_details={"redeem_activity_id": "x", "amount_money": usd(100)})
    assert made.status_code == 400 and only_error(made)["code"] == "CONFLICTING_PARAMETERS"
    assert balance(sim) == 5000


# --- NewStore's payment webhooks through mappings/square.yaml ------------------------------------

MAPPING = ROOT / "mappings" / "square.yaml"
_JSON = msgspec.json.Encoder(decimal_format="number")  # amounts go out as exact JSON numbers


def _gateway(square, directory, mapping=MAPPING):
    config = write_config(directory, {"square": {
        "mapping": str(mapping),
        "vars": {"base_url": square.url, "location_id": LOCATION},
        "secrets": {"access_token": {"file": str(TOKEN_FILE)}}, "inbound": "none"}},
        idempotency={"key_file": str(directory / "k.key"), "store": f"sqlite:///{directory / 'idem.sqlite3'}"})
    return client_for(config)


@pytest.fixture
def gateway(sim, tmp_path):
    with _gateway(sim, tmp_path) as client:
        yield client


def _post(client, path: str, body: dict[str, Any]):
    return client.post(path, content=_JSON.encode(body), headers={"Content-Type": "application/json"})


def _checked(response):
    if response.status_code == 200:
        check_psp_response(response.json())
    else:
        check_psp_error(response.json())
    return response


def create(client, key: str, amount: str, number: str = CARD):
    return _checked(_post(client, "/square/financial_instruments", {
        "account_id": "acct-1", "idempotency_key": key, "retry_id": f"{key}-retry",
        "arguments": {"instrument": {"type": "token", "identifier": number}, "amount": Decimal(amount),
                      "currency": "USD", "payment_method": "gift_card"}}))


def act(client, action: str, instrument: str, key: str, transactions: list, amount: str | None):
    body: dict[str, Any] = {"account_id": "acct-1", "instrument_id": instrument, "transactions": transactions,
                            "idempotency_key": key}
    if amount is not None:
        body["arguments"] = {"amount": Decimal(amount), "currency": "USD"}
    return _checked(_post(client, f"/square/financial_instruments/{instrument}/_{action}", body))


def gift_card_balance(client, number: str = CARD) -> Decimal:
    answer = client.post("/square/gift_card/balance", json={"identifier": {"number": number}})
    assert answer.status_code == 200, answer.text
    return Decimal(str(answer.json()["value"]))


def redeem_calls(sim) -> list[dict[str, Any]]:
    return [c for c in sim.calls() if c["path"] == ACTIVITIES
            and c["body"]["gift_card_activity"]["type"] == "REDEEM"]


def clear_calls(sim) -> None:
    sim.http.delete("/_sim/calls").raise_for_status()


def test_purchase_lifecycle(gateway, sim):
    created = create(gateway, "pay-life-1", "30.00")
    assert created.status_code == 200, created.text
    [txn] = created.json()
    instrument = txn["instrument_id"]
    assert instrument.startswith("gcact_") and txn["transaction_id"] == instrument
    assert (Decimal(str(txn["capture_amount"])), Decimal(str(txn["refund_amount"]))) == (0, Decimal("30.00"))
    assert txn["reason"] == "capture" and txn["currency"] == "USD"
    assert txn["metadata"]["gift_card_id"].startswith("gftc:")
    assert txn["metadata"]["essential"]["instrument_metadata"]["gift_card_number"] == "****1111"
    assert CARD not in created.text  # only the last 4 go back to NewStore
    [redeem] = redeem_calls(sim)
    assert redeem["body"]["idempotency_key"] == "pay-life-1-redeem"
    assert redeem["body"]["gift_card_activity"]["redeem_activity_details"] == {
        "amount_money": usd(3000), "reference_id": "acct-1"}
    assert gift_card_balance(gateway) == Decimal("20.00")
    transactions = created.json()

    clear_calls(sim)
    captured = act(gateway, "capture", instrument, "cap-life-1", transactions, "30.00")
    assert captured.status_code == 200, captured.text
    assert captured.json() == []
    assert sim.calls() == []  # nothing to capture at Square: the money was taken at create

    refunded = act(gateway, "refund", instrument, "ref-life-1", transactions, "5.00")
    assert refunded.status_code == 200, refunded.text
    [credit] = refunded.json()
    assert credit["instrument_id"] == instrument and credit["reason"] == "refund"
    assert Decimal(str(credit["refund_amount"])) == Decimal("-5.00")
    [call] = sim.calls()
    details = call["body"]["gift_card_activity"]
    assert details["type"] == "REFUND" and details["gift_card_id"] == txn["metadata"]["gift_card_id"]
    assert details["refund_activity_details"]["redeem_activity_id"] == instrument
    assert call["body"]["idempotency_key"] == "ref-life-1-refund"
    assert gift_card_balance(gateway) == Decimal("25.00")
    transactions += refunded.json()

    clear_calls(sim)
    too_much = act(gateway, "refund", instrument, "ref-life-2", transactions, "25.01")
    assert too_much.status_code == 400, too_much.text
    assert too_much.json()["error_code"] == "instrument_error"
    assert sim.calls() == []  # refused by the gateway, before Square
    assert gift_card_balance(gateway) == Decimal("25.00")

    clear_calls(sim)
    revoked = act(gateway, "revoke", instrument, "rev-life-1", transactions, None)
    assert revoked.status_code == 200, revoked.text
    [void] = revoked.json()
    assert void["reason"] == "revoke" and Decimal(str(void["refund_amount"])) == Decimal("-25.00")
    [call] = [c for c in sim.calls() if c["path"] == ACTIVITIES]
    assert call["body"]["gift_card_activity"]["refund_activity_details"]["amount_money"] == usd(2500)
    assert gift_card_balance(gateway) == Decimal("50.00")
    transactions += revoked.json()

    clear_calls(sim)
    again = act(gateway, "revoke", instrument, "rev-life-2", transactions, None)
    assert again.status_code == 200 and again.json() == []
    assert sim.calls() == []


@pytest.mark.parametrize(("number", "amount", "why"), [
    (CARD, "50.01", "The gift card's balance is lower than the amount."),
    ("7783329999999999", "10.00", "The gift card does not exist."),
    ("7783320000003333", "10.00", "The gift card is not active."),   # DEACTIVATED
    ("7783320000004444", "10.00", "The gift card is not active."),   # BLOCKED
    ("7783320000005551", "10.00", "The gift card is not active."),   # PENDING
])
def test_create_refused_is_a_definitive_instrument_error(gateway, sim, number, amount, why):
    before = {c["gan"]: c["balance_money"] for c in sim.http.get("/_sim/cards").json()["cards"]}
    refused = create(gateway, f"pay-no-{number}", amount, number)
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert set(body) == {"error_code", "message", "details"}
    assert (body["error_code"], body["message"]) == ("instrument_error", why)
    assert number not in refused.text
    after = {c["gan"]: c["balance_money"] for c in sim.http.get("/_sim/cards").json()["cards"]}
    assert after == before
    # Definitive: the same key is answered the same without asking Square again.
    clear_calls(sim)
    assert create(gateway, f"pay-no-{number}", amount, number).content == refused.content
    assert sim.calls() == []


def test_a_timeout_then_newstores_retry_redeems_once(sim, tmp_path):
    fast = tmp_path / "square-fast.yaml"
    text = MAPPING.read_text()
    assert "\ntimeout: 10\n" in text
    fast.write_text(text.replace("\ntimeout: 10\n", "\ntimeout: 0.5\n"))
    with _gateway(sim, tmp_path, fast) as client:
        sim.fault("delay", seconds=1.5)
        lost = create(client, "pay-timeout-1", "30.00")
        assert lost.status_code == 500, lost.text
        assert lost.json()["error_code"] == "retry_error"  # retry_safe: NewStore retries the same key
        time.sleep(1.5)  # Square finishes the first REDEEM meanwhile
        retried = create(client, "pay-timeout-1", "30.00")
        assert retried.status_code == 200, retried.text
        replayed = create(client, "pay-timeout-1", "30.00")
        assert replayed.content == retried.content
        assert gift_card_balance(client) == Decimal("20.00")  # redeemed once
    first, second = redeem_calls(sim)  # the third request was the gateway's own replay
    assert first["body"] == second["body"]  # the same Square idempotency_key and body: Square replayed
    assert first["body"]["idempotency_key"] == "pay-timeout-1-redeem"
    [card] = [c for c in sim.http.get("/_sim/cards").json()["cards"] if c["gan"] == CARD]
    assert card["balance_money"] == usd(2000)
