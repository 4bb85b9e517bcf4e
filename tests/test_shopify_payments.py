"""Paying with a Shopify gift card: the simulator's giftCardDebit / giftCardCredit over HTTP, then the
gateway's payment webhooks on mappings/shopify.yaml ("redeem at once") against it.

Schema: Shopify Admin GraphQL 2025-10 (see simulators/shopify/README.md, "Pay and refund").
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_psp_error, check_psp_response

FOLDER = ROOT / "simulators" / "shopify"
TOKEN = (FOLDER / "shopify.token").read_text().strip()
CARD_50 = "gid://shopify/GiftCard/1001"  # GIFT5000ENABLED, 50.00 USD
CARD_EMPTY = "gid://shopify/GiftCard/1003"
CARD_DISABLED = "gid://shopify/GiftCard/1004"
CARD_EXPIRED = "gid://shopify/GiftCard/1005"

TRANSACTION = "id amount { amount currencyCode } processedAt note giftCard { id balance { amount currencyCode } }"
DEBIT = (
    "mutation Debit($id: ID!, $input: GiftCardDebitInput!) { giftCardDebit(id: $id, debitInput: $input) { "
    f"giftCardDebitTransaction {{ {TRANSACTION} }} userErrors {{ code field message }} }} }}"
)
CREDIT = (
    "mutation Credit($id: ID!, $input: GiftCardCreditInput!) { giftCardCredit(id: $id, creditInput: $input) { "
    f"giftCardCreditTransaction {{ {TRANSACTION} }} userErrors {{ code field message }} }} }}"
)
BALANCE = "query B($id: ID!) { giftCard(id: $id) { balance { amount currencyCode } } }"


@pytest.fixture(scope="module")
def shopify(tmp_path_factory):
    yield from start_simulator("simulators.shopify", tmp_path_factory)


@pytest.fixture
def sim(shopify):
    shopify.reset()
    return shopify


def graphql(sim, query: str, variables: dict[str, Any] | None = None, token: str = TOKEN) -> dict[str, Any]:
    response = sim.http.post("/admin/api/2025-10/graphql.json", json={"query": query, "variables": variables or {}},
                             headers={"X-Shopify-Access-Token": token})
    assert response.status_code == 200, response.text
    return response.json()


def money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currencyCode": currency}


def debit(sim, gid: str, amount: str, currency: str = "USD", **extra: Any) -> dict[str, Any]:
    body = graphql(sim, DEBIT, {"id": gid, "input": {"debitAmount": money(amount, currency), **extra}})
    assert "errors" not in body, body
    return body["data"]["giftCardDebit"]


def credit(sim, gid: str, amount: str, currency: str = "USD", **extra: Any) -> dict[str, Any]:
    body = graphql(sim, CREDIT, {"id": gid, "input": {"creditAmount": money(amount, currency), **extra}})
    assert "errors" not in body, body
    return body["data"]["giftCardCredit"]


def balance(sim, gid: str) -> Decimal:
    return Decimal(graphql(sim, BALANCE, {"id": gid})["data"]["giftCard"]["balance"]["amount"])


def refused(payload: dict[str, Any], key: str) -> dict[str, Any]:
    assert payload[key] is None, payload
    assert len(payload["userErrors"]) == 1, payload
    return payload["userErrors"][0]


def test_debit_reduces_the_balance_and_returns_a_negative_transaction(sim):
    payload = debit(sim, CARD_50, "30.00", note="NewStore order 1", processedAt="2024-09-09T12:48:33-04:00")
    assert payload["userErrors"] == []
    transaction = payload["giftCardDebitTransaction"]
    assert transaction["id"].startswith("gid://shopify/GiftCardDebitTransaction/")
    assert transaction["amount"] == {"amount": "-30.0", "currencyCode": "USD"}  # Shopify shows debits negative
    assert transaction["processedAt"] == "2024-09-09T16:48:33Z"  # normalised to UTC
    assert transaction["note"] == "NewStore order 1"
    assert transaction["giftCard"] == {"id": CARD_50, "balance": {"amount": "20.0", "currencyCode": "USD"}}
    assert balance(sim, CARD_50) == Decimal("20.00")
    second = debit(sim, CARD_50, "20")["giftCardDebitTransaction"]  # the whole rest: allowed
    assert second["id"] != transaction["id"]
    assert second["giftCard"]["balance"]["amount"] == "0.0"


def test_debit_more_than_the_balance_is_insufficient_funds(sim):
    error = refused(debit(sim, CARD_50, "50.01"), "giftCardDebitTransaction")
    assert error["code"] == "INSUFFICIENT_FUNDS"
    assert error["field"] == ["debitInput", "debitAmount", "amount"]
    assert balance(sim, CARD_50) == Decimal("50")  # nothing moved
    assert refused(debit(sim, CARD_EMPTY, "0.01"), "giftCardDebitTransaction")["code"] == "INSUFFICIENT_FUNDS"


def test_credit_increases_the_balance_up_to_the_limit(sim):
    payload = credit(sim, CARD_50, "5.50")
    assert payload["userErrors"] == []
    transaction = payload["giftCardCreditTransaction"]
    assert transaction["id"].startswith("gid://shopify/GiftCardCreditTransaction/")
    assert transaction["amount"] == {"amount": "5.5", "currencyCode": "USD"}
    assert transaction["giftCard"]["balance"]["amount"] == "55.5"
    assert balance(sim, CARD_50) == Decimal("55.50")
    assert credit(sim, CARD_50, "9944.50")["userErrors"] == []  # exactly the default limit, 10000.00
    error = refused(credit(sim, CARD_50, "0.01"), "giftCardCreditTransaction")
    assert error["code"] == "GIFT_CARD_LIMIT_EXCEEDED"
    assert balance(sim, CARD_50) == Decimal("10000")


@pytest.mark.parametrize("operation", [debit, credit])
def test_mismatching_currency(sim, operation):
    key = "giftCardDebitTransaction" if operation is debit else "giftCardCreditTransaction"
    error = refused(operation(sim, CARD_50, "1.00", "EUR"), key)
    assert error["code"] == "MISMATCHING_CURRENCY"
    assert error["field"][-1] == "currencyCode"
    assert balance(sim, CARD_50) == Decimal("50")
    # a card in another currency than the shop's is debited in its own currency
    sim.http.post("/_sim/cards", json={"code": "EUROCARD1234", "balance": "20.00", "currency": "EUR"}).raise_for_status()
    gid = next(c["id"] for c in sim.http.get("/_sim/cards").json()["cards"] if c["currency"] == "EUR")
    assert refused(operation(sim, gid, "1.00", "USD"), key)["code"] == "MISMATCHING_CURRENCY"
    assert operation(sim, gid, "1.00", "EUR")["userErrors"] == []


@pytest.mark.parametrize("operation", [debit, credit])
@pytest.mark.parametrize("gid", [CARD_DISABLED, CARD_EXPIRED])
def test_deactivated_or_expired_card_is_refused(sim, operation, gid):
    key = "giftCardDebitTransaction" if operation is debit else "giftCardCreditTransaction"
    error = refused(operation(sim, gid, "1.00"), key)
    assert (error["code"], error["field"]) == ("INVALID", ["id"])
    assert balance(sim, gid) == Decimal("15" if gid == CARD_DISABLED else "10")


def test_a_card_deactivated_through_the_api_is_refused(sim):
    body = graphql(sim, "mutation($id: ID!) { giftCardDeactivate(id: $id) { userErrors { code } } }", {"id": CARD_50})
    assert body["data"]["giftCardDeactivate"]["userErrors"] == []
    assert refused(debit(sim, CARD_50, "1.00"), "giftCardDebitTransaction")["code"] == "INVALID"


@pytest.mark.parametrize("gid", ["gid://shopify/GiftCard/999999", "gid://shopify/Product/1001"])
def test_unknown_card(sim, gid):
    error = refused(debit(sim, gid, "1.00"), "giftCardDebitTransaction")
    assert (error["code"], error["field"]) == ("GIFT_CARD_NOT_FOUND", ["id"])


@pytest.mark.parametrize(("amount", "code"), [("0", "NEGATIVE_OR_ZERO_AMOUNT"), ("-5.00", "NEGATIVE_OR_ZERO_AMOUNT"),
                                              ("1.005", "INVALID")])
def test_amounts_shopify_refuses(sim, amount, code):
    for operation, key in ((debit, "giftCardDebitTransaction"), (credit, "giftCardCreditTransaction")):
        assert refused(operation(sim, CARD_50, amount), key)["code"] == code
    assert balance(sim, CARD_50) == Decimal("50")


def test_processed_at_in_the_future_is_invalid(sim):
    error = refused(debit(sim, CARD_50, "1.00", processedAt="2999-01-01T00:00:00Z"), "giftCardDebitTransaction")
    assert (error["code"], error["field"]) == ("INVALID", ["debitInput", "processedAt"])


@pytest.mark.parametrize(("query", "variables", "code"), [
    # not in the 2025-10 schema: a transaction has no balance field (read giftCard { balance })
    ("mutation { giftCardDebit(id: \"gid://shopify/GiftCard/1001\", debitInput: {debitAmount: {amount: \"1\", "
     "currencyCode: USD}}) { giftCardDebitTransaction { balanceAfterTransaction } userErrors { code } } }",
     None, "undefinedField"),
    ("mutation { giftCardDebit(id: \"gid://shopify/GiftCard/1001\") { userErrors { code } } }",
     None, "missingRequiredArguments"),
    # credit takes creditAmount, not debitAmount
    ("mutation { giftCardCredit(id: \"gid://shopify/GiftCard/1001\", creditInput: {debitAmount: {amount: \"1\", "
     "currencyCode: USD}}) { userErrors { code } } }", None, "argumentNotAccepted"),
    ("mutation { giftCardDebit(id: \"gid://shopify/GiftCard/1001\", debitInput: {debitAmount: {amount: \"1\", "
     "currencyCode: usd}}) { userErrors { code } } }", None, "argumentLiteralsIncompatible"),
])
def test_schema_violations_are_graphql_errors(sim, query, variables, code):
    body = graphql(sim, query, variables)
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code
    assert balance(sim, CARD_50) == Decimal("50")


@pytest.mark.parametrize("money_value", [{"amount": 1, "currencyCode": "USD"},  # Decimal is a string
                                         {"amount": "1"},  # currencyCode is required
                                         {"amount": "1", "currencyCode": "XXX"}])
def test_bad_money_variables(sim, money_value):
    body = graphql(sim, DEBIT, {"id": CARD_50, "input": {"debitAmount": money_value}})
    assert "data" not in body and body["errors"][0]["extensions"]["problems"]
    assert balance(sim, CARD_50) == Decimal("50")


@pytest.fixture(scope="module")
def gift_cards_only(tmp_path_factory):
    """A simulator whose tokens have the gift card scopes but not the transaction ones."""
    err = (tmp_path_factory.mktemp("shopify-scopes") / "simulator.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "simulators.shopify", "--port", "0",
                             "--scope", "read_gift_cards", "--scope", "write_gift_cards"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().split()[-1]
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            yield http
    finally:
        proc.terminate()
        proc.wait(10)
        err.close()


def test_debit_and_credit_need_the_transaction_scope(gift_cards_only):
    for query, name in ((DEBIT, "giftCardDebit"), (CREDIT, "giftCardCredit")):
        amount = "debitAmount" if name == "giftCardDebit" else "creditAmount"
        response = gift_cards_only.post("/admin/api/2025-10/graphql.json", headers={"X-Shopify-Access-Token": TOKEN},
                                        json={"query": query, "variables": {"id": CARD_50,
                                                                           "input": {amount: money("1.00")}}})
        body = response.json()
        assert body["data"] == {name: None}
        assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
        assert "write_gift_card_transactions" in body["errors"][0]["message"]
    lookup = gift_cards_only.post("/admin/api/2025-10/graphql.json", headers={"X-Shopify-Access-Token": TOKEN},
                                  json={"query": BALANCE, "variables": {"id": CARD_50}}).json()
    assert lookup["data"]["giftCard"]["balance"]["amount"] == "50.0"  # nothing was debited


# --- the gateway's payment webhooks on mappings/shopify.yaml ("redeem at once") --------------------


CODE = "GIFT5000ENABLED"  # 50.00 USD, gid 1001
PAY = "/shopify/financial_instruments"


@pytest.fixture
def gateway(sim, tmp_path):
    config = write_config(tmp_path, {"shopify": {
        "mapping": str(ROOT / "mappings" / "shopify.yaml"), "vars": {"shop_url": sim.url},
        "secrets": {"client_id": {"file": str(FOLDER / "shopify.client_id")},
                    "client_secret": {"file": str(FOLDER / "shopify.client_secret")}},
        "inbound": "none", "deadline": 3}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def new_key() -> str:
    return str(uuid.uuid4())


def create(client, amount, code=CODE, currency="USD", idem=None):
    return client.post(PAY, json={
        "account_id": "acct-1", "idempotency_key": idem or new_key(), "retry_id": new_key(),
        "arguments": {"amount": amount, "currency": currency, "payment_method": "gift_card",
                      "instrument": {"type": "token", "identifier": code}}})


def act(client, action, instrument, transactions, amount=None, currency="USD", idem=None):
    body = {"account_id": "acct-1", "instrument_id": instrument, "transactions": transactions,
            "idempotency_key": idem or new_key(), "metadata": {}}
    if amount is not None:
        body["arguments"] = {"amount": amount, "currency": currency}
    return client.post(f"{PAY}/{instrument}/_{action}", json=body)


def card_balance(client, code=CODE) -> Decimal:
    response = client.post("/shopify/gift_card/balance", json={"identifier": {"number": code}})
    assert response.status_code == 200, response.text
    return Decimal(str(response.json()["value"]))


def ok(response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    check_psp_response(body)
    return body


def psp_refused(response, status=400, code="instrument_error") -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    check_psp_error(body)
    assert body["error_code"] == code, body
    return body


def mutations(sim, name: str) -> list[dict[str, Any]]:
    return [c for c in sim.calls() if c["path"].endswith("/graphql.json") and name in c["body"]["query"]]


def test_purchase_redeems_at_once_then_refunds_and_revokes(gateway, sim):
    assert card_balance(gateway) == Decimal("50.00")
    key = new_key()
    [created] = ok(create(gateway, 30.00, idem=key))
    assert created["reason"] == "capture"
    assert (created["capture_amount"], created["refund_amount"]) == (0, 30.0)
    assert created["currency"] == "USD" and created["payment_method"] == "gift_card"
    assert created["metadata"] == {"gift_card_id": "gid://shopify/GiftCard/1001"}
    assert created["transaction_id"].startswith("gid://shopify/GiftCardDebitTransaction/")
    instrument = created["instrument_id"]
    assert instrument == "shopify-debit-" + created["transaction_id"].rsplit("/", 1)[1]  # no `/` in NewStore's URL
    assert card_balance(gateway) == Decimal("20.00")
    [debit_call] = mutations(sim, "giftCardDebit")
    assert debit_call["body"]["variables"] == {"id": "gid://shopify/GiftCard/1001", "input": {
        "debitAmount": {"amount": "30.00", "currencyCode": "USD"}, "note": f"NewStore payment {key}"}}
    # the same key again: replayed, not debited twice
    assert ok(create(gateway, 30.00, idem=key)) == [created]
    assert len(mutations(sim, "giftCardDebit")) == 1

    # capture: nothing to do at Shopify
    calls_before = len(sim.calls())
    assert ok(act(gateway, "capture", instrument, [created], 30.00)) == []
    assert len(sim.calls()) == calls_before

    [refund] = ok(act(gateway, "refund", instrument, [created], 5.00))
    assert (refund["reason"], refund["capture_amount"], refund["refund_amount"]) == ("refund", 0, -5.0)
    assert refund["instrument_id"] == instrument
    assert refund["transaction_id"].startswith("gid://shopify/GiftCardCreditTransaction/")
    [credit_call] = mutations(sim, "giftCardCredit")
    assert credit_call["body"]["variables"]["id"] == "gid://shopify/GiftCard/1001"
    assert credit_call["body"]["variables"]["input"]["creditAmount"] == {"amount": "5.00", "currencyCode": "USD"}
    assert card_balance(gateway) == Decimal("25.00")

    # more than is left to refund (30 - 5): refused by the gateway, nothing sent
    calls_before = len(sim.calls())
    body = psp_refused(act(gateway, "refund", instrument, [created, refund], 25.01))
    assert re.search(r"\b25(\.0+)? is available for refund", body["message"]), body
    assert len(sim.calls()) == calls_before
    assert card_balance(gateway) == Decimal("25.00")

    # revoke gives back all that is still refundable (25.00)
    [revoked] = ok(act(gateway, "revoke", instrument, [created, refund]))
    assert (revoked["reason"], revoked["capture_amount"], revoked["refund_amount"]) == ("revoke", 0, -25.0)
    assert mutations(sim, "giftCardCredit")[-1]["body"]["variables"]["input"]["creditAmount"]["amount"] == "25.00"
    assert card_balance(gateway) == Decimal("50.00")
    # revoking again, with nothing left, calls nothing
    calls_before = len(sim.calls())
    [again] = ok(act(gateway, "revoke", instrument, [created, refund, revoked]))
    assert again["refund_amount"] == 0 and again["transaction_id"] == f"{instrument}-revoke"
    assert len(sim.calls()) == calls_before


def test_insufficient_funds(gateway, sim):
    body = psp_refused(create(gateway, 50.01))
    assert body["details"]["shopify_code"] == "INSUFFICIENT_FUNDS"
    assert card_balance(gateway) == Decimal("50.00")
    ok(create(gateway, 50.00))  # the whole balance may be paid
    assert card_balance(gateway) == Decimal("0.00")


@pytest.mark.parametrize(("code", "message"), [("NOSUCHCARD123", "does not exist"),
                                                ("GIFTDISABLED15", "deactivated")])
def test_card_not_found_or_deactivated_is_refused_before_any_debit(gateway, sim, code, message):
    body = psp_refused(create(gateway, 1.00, code=code))
    assert message in body["message"]
    assert mutations(sim, "giftCardDebit") == []


def test_expired_card_is_refused_by_shopify(gateway, sim):
    body = psp_refused(create(gateway, 1.00, code="GIFTEXPIRED1000"))
    assert body["details"]["shopify_code"] == "INVALID"
    assert card_balance(gateway, "GIFTEXPIRED1000") == Decimal("10.00")


def test_payment_in_another_currency_than_the_card(gateway, sim):
    body = psp_refused(create(gateway, 1.00, currency="EUR"))
    assert body["details"]["shopify_code"] == "MISMATCHING_CURRENCY"
    assert card_balance(gateway) == Decimal("50.00")


def test_refund_of_a_deactivated_card_is_refused(gateway, sim):
    [created] = ok(create(gateway, 10.00))
    sim.http.post("/_sim/cards", json={"code": CODE, "balance": "40.00", "initial_value": "50.00",
                                       "enabled": False}).raise_for_status()
    body = psp_refused(act(gateway, "refund", created["instrument_id"], [created], 10.00))
    assert body["details"]["shopify_code"] == "INVALID"


def test_an_unknown_refund_outcome_is_not_retried(gateway, sim):
    """No idempotency key at Shopify: a 5xx on the credit may have credited; NewStore must not retry."""
    [created] = ok(create(gateway, 10.00))
    sim.fault("status", status=502)
    body = psp_refused(act(gateway, "refund", created["instrument_id"], [created], 10.00), code="psp_api_error")
    assert body["details"]["gateway_error"] == "provider_error"


def test_throttling_is_retryable(gateway, sim):
    card_balance(gateway)  # the token is fetched
    sim.fault("status", status=429)
    body = psp_refused(create(gateway, 1.00), status=500, code="rate_limit")
    assert body["details"]["gateway_error"] == "rate_limit"
    assert card_balance(gateway) == Decimal("50.00")
