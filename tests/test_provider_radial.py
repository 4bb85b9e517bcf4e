"""The Radial mapping (XML both ways, tender lookup before every operation) against the Radial simulator."""

from __future__ import annotations

import pytest

from .conftest import ROOT, client_for, start_simulator, write_config
from .newstore_spec import check_error, check_response

FOLDER = ROOT / "simulators" / "radial"


@pytest.fixture(scope="module")
def radial(tmp_path_factory):
    yield from start_simulator("simulators.radial", tmp_path_factory)


@pytest.fixture
def gateway(radial, tmp_path):
    radial.reset()
    config = write_config(tmp_path, {"radial": {
        "mapping": str(ROOT / "mappings" / "radial.yaml"), "vars": {"base_url": radial.url, "store_id": "TMSUS"},
        "secrets": {"api_key": {"file": str(FOLDER / "radial.key")}}, "inbound": "none"}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def post(client, operation, body):
    return client.post(f"/radial/gift_card/{operation}", json=body)


@pytest.mark.parametrize(("number", "pin", "expected"), [
    ("6035 7100 0000 0018", "1234", {"value": 50.00, "currency": "USD"}),
    ("6006490000000000016", "12345678", {"value": 100.00, "currency": "USD"}),
    ("6046460000000017", None, {"value": 25.00, "currency": "USD"}),
])
def test_balance_looks_up_the_tender_then_reads_the_balance(gateway, radial, number, pin, expected):
    identifier = {"number": number} | ({"pin": pin} if pin else {})
    response = post(gateway, "balance", {"identifier": identifier})
    assert response.status_code == 200, response.text
    assert response.json() == expected
    lookup, balance = radial.calls()
    assert lookup["path"] == "/v1.0/stores/TMSUS/payments/tendertype/lookup.xml"
    assert balance["path"].startswith("/v1.0/stores/TMSUS/payments/storedvalue/balance/")
    assert balance["headers"]["apikey"] == "***"
    assert balance["headers"]["content-type"].startswith("application/xml")


@pytest.mark.parametrize(("number", "pin", "code", "status"), [
    ("6035710000000019", "1234", "card_not_found", 400),        # fails Luhn
    ("6035710000000018", "9999", "card_declined", 400),         # wrong PIN: Radial says only Fail
    ("6035710000000083", "8888", "card_declined", 400),         # deactivated
    ("6035710000000109", "1010", "provider_timeout", 503),      # the processor timed out
])
def test_balance_errors(gateway, number, pin, code, status):
    response = post(gateway, "balance", {"identifier": {"number": number, "pin": pin}})
    assert response.status_code == status, response.text
    check_error(response.json())
    assert response.json()["error_code"] == code


def test_issue_is_declared_unsupported(gateway, radial):
    response = post(gateway, "issue", {"amount": {"value": 10, "currency": "USD"}, "customer": {"id": "c"}})
    assert response.status_code == 400
    assert response.json()["error_code"] == "unsupported_operation"
    assert "no call that creates a card" in response.json()["message"]
    assert radial.calls() == []


def test_activate_funds_a_card_with_a_decimal_amount(gateway, radial):
    body = {"card_number": "6046460000000033", "amount": {"value": 15.5, "currency": "USD"},
            "customer": {"id": "c1"}, "idempotence_key": "rad-act-1"}
    response = post(gateway, "activate", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"identifier": {"number": "6046460000000033"}}
    fund = radial.calls()[-1]
    assert '<Amount currencyCode="USD">15.50</Amount>' in fund["body"]
    assert 'requestId="rad-act-1-activate"' in fund["body"]
    balance = post(gateway, "balance", {"identifier": {"number": "6046460000000033"}})
    assert balance.json() == {"value": 15.50, "currency": "USD"}


def test_activate_with_the_pin_from_metadata(gateway):
    body = {"card_number": "6035710000000034", "amount": {"value": 30, "currency": "USD"},
            "customer": {"id": "c1"}, "metadata": {"pin": "3333"}}
    response = post(gateway, "activate", body)
    assert response.status_code == 200, response.text
    again = post(gateway, "activate", body)
    assert again.status_code == 400 and again.json()["error_code"] == "card_declined"


def test_deactivate_cashes_out_the_whole_balance(gateway, radial):
    response = post(gateway, "deactivate", {"card_number": "6035710000000018", "pin": "1234", "idempotence_key": "rad-d-1"})
    assert response.status_code == 200, response.text
    check_response("deactivate", response.json())
    cashout = radial.calls()[-1]
    assert '<Amount currencyCode="USD">50.00</Amount>' in cashout["body"]
    after = post(gateway, "balance", {"identifier": {"number": "6035710000000018", "pin": "1234"}})
    assert after.status_code == 400 and after.json()["error_code"] == "card_declined"


def test_rate_limited(gateway, radial):
    radial.fault("status", status=429)
    response = post(gateway, "balance", {"identifier": {"number": "6046460000000017"}})
    assert response.status_code == 503 and response.json()["error_code"] == "rate_limit"


# --- the replies Radial's XSDs define (RadialCorp/RetailOrderManagement-SDK, checkout/1.0) -------

NS = "{http://api.gsicommerce.com/schema/checkout/1.0}"
KEY = (FOLDER / "radial.key").read_text().strip()
XML = {"Content-Type": "application/xml", "apiKey": KEY}


def _children(text: str) -> list[str]:
    import xml.etree.ElementTree as ET

    return [child.tag.removeprefix(NS) for child in ET.fromstring(text)]


def _send(radial, path: str, body: str):
    return radial.http.post(f"/v1.0/stores/TMSUS/payments/{path}", content=body, headers=XML)


def test_a_fund_and_activate_reply_carries_the_card_and_amount_funded(radial):
    radial.reset()
    body = ('<StoredValueFundAndActivateRequest xmlns="http://api.gsicommerce.com/schema/checkout/1.0" requestId="x1">'
            '<PaymentContext><OrderId>O1</OrderId><PaymentAccountUniqueId isToken="false">6046460000000041'
            '</PaymentAccountUniqueId></PaymentContext><Amount currencyCode="USD">12.00</Amount>'
            '</StoredValueFundAndActivateRequest>')
    reply = _send(radial, "storedvalue/fundandactivate/BH.xml", body)
    assert reply.status_code == 200, reply.text
    # StoredValueFundAndActivateReplyType: PaymentContext, PaymentAccountUniqueId, Pin?, ResponseCode, AmountFunded
    assert _children(reply.text) == ["PaymentContext", "PaymentAccountUniqueId", "ResponseCode", "AmountFunded"]
    assert '<AmountFunded currencyCode="USD">12.00</AmountFunded>' in reply.text


def test_a_cash_out_reply_carries_amount_out(radial):
    radial.reset()
    body = ('<StoredValueCashOutRequest xmlns="http://api.gsicommerce.com/schema/checkout/1.0" requestId="x2">'
            '<PaymentContext><OrderId>O2</OrderId><PaymentAccountUniqueId isToken="false">6046460000000017'
            '</PaymentAccountUniqueId></PaymentContext><Amount currencyCode="USD">10.00</Amount>'
            '</StoredValueCashOutRequest>')
    reply = _send(radial, "storedvalue/cashout/BH.xml", body)
    assert reply.status_code == 200, reply.text
    # StoredValueCashOutReplyType: PaymentContext, ResponseCode, AmountOut (no BalanceAmount)
    assert _children(reply.text) == ["PaymentContext", "ResponseCode", "AmountOut"]
    assert '<AmountOut currencyCode="USD">10.00</AmountOut>' in reply.text


@pytest.mark.parametrize(("pan", "code"), [
    ("6035710000000019", "PAN_FAILS_LUHN_CHECK"),
    ("5105105105105100", "NO_TENDER_TYPE_FOUND"),  # a credit card, asked for as stored value
])
def test_a_failed_lookup_has_no_tender_type_element(radial, pan, code):
    body = ('<TenderTypeLookupRequest xmlns="http://api.gsicommerce.com/schema/checkout/1.0">'
            f'<PaymentAccountUniqueId isToken="false">{pan}</PaymentAccountUniqueId>'
            '<TenderClass>StoredValue</TenderClass><CurrencyCode>USD</CurrencyCode></TenderTypeLookupRequest>')
    reply = _send(radial, "tendertype/lookup.xml", body)
    assert reply.status_code == 200, reply.text
    # TenderType is minOccurs=0 and, when present, 2-4 characters: never an empty element.
    assert _children(reply.text) == ["ResponseCode"]
    assert f"<ResponseCode>{code}</ResponseCode>" in reply.text


# --- amounts with more decimals than Radial's two ----------------------------------------------


@pytest.mark.parametrize("currency", ["KWD", "BHD", "JOD", "OMR", "TND"])
def test_max_exponent_refuses_three_decimal_currencies_as_input_errors(currency):
    from gateway.language.filters import FILTERS, FilterError, InputError
    from gateway.language.templating import RenderError, Where, compile_string

    with pytest.raises(InputError) as caught:
        FILTERS["max_exponent"](currency, 2)
    assert isinstance(caught.value, FilterError)
    assert f"{currency} amounts have 3 decimal places" in str(caught.value)
    for fine in ("USD", "usd", "JPY", "EUR"):
        assert FILTERS["max_exponent"](fine, 2) == fine
    # The mapping's first activate step renders it: the template fails before anything is sent.
    template = compile_string("{{ currency | upper | max_exponent(2) }}", Where("radial.yaml", "lookup"))
    assert template.render({"currency": "usd"}) == "USD"
    with pytest.raises(RenderError) as failed:
        template.render({"currency": currency.lower()})
    assert "3 decimal places" in failed.value.message


@pytest.mark.parametrize("currency", ["KWD", "BHD"])
def test_a_three_decimal_currency_is_never_sent_to_radial(gateway, radial, currency):
    body = {"card_number": "6046460000000058", "amount": {"value": 10.125, "currency": currency},
            "customer": {"id": "c1"}, "idempotence_key": f"rad-{currency}"}
    response = post(gateway, "activate", body)
    check_error(response.json())
    assert response.json()["request_accepted"] is False
    assert radial.calls() == []  # not even the tender lookup


def test_a_three_decimal_currency_is_a_400_invalid_request(gateway, radial):
    # Needs the engine's InputError wiring (a filter raising gateway.language.filters.InputError before
    # anything was sent makes the webhook 400 invalid_request); without it this is a 502.
    body = {"card_number": "6046460000000058", "amount": {"value": 10.125, "currency": "KWD"},
            "customer": {"id": "c1"}}
    response = post(gateway, "activate", body)
    assert response.status_code == 400, response.text
    check_error(response.json())
    assert response.json()["error_code"] == "invalid_request"
    assert response.json()["request_accepted"] is False
    assert "KWD amounts have 3 decimal places" in response.json()["message"]
    assert radial.calls() == []


# Each reply's children, in the XSDs' order (`?`: optional).
REPLY_SEQUENCES = {
    "TenderTypeLookupReply": ["TenderType?", "ResponseCode"],
    "StoredValueBalanceReply": ["PaymentAccountUniqueId", "ResponseCode", "BalanceAmount"],
    "StoredValueFundAndActivateReply": ["PaymentContext", "PaymentAccountUniqueId", "Pin?", "ResponseCode", "AmountFunded"],
    "StoredValueCashOutReply": ["PaymentContext", "ResponseCode", "AmountOut"],
}


def _follows(children: list[str], sequence: list[str]) -> bool:
    wanted = [name for name in sequence if not name.endswith("?") or name[:-1] in children]
    return children == [name.rstrip("?") for name in wanted]


def test_canned_replies_in_the_offline_cases_follow_the_xsds():
    import xml.etree.ElementTree as ET

    import yaml

    seen = 0
    for case in yaml.safe_load((ROOT / "mappings" / "radial.test.yaml").read_text())["cases"]:
        for step, answer in case.get("provider", {}).items():
            root = ET.fromstring(answer["body"])
            name = root.tag.removeprefix(NS)
            assert root.tag.startswith(NS), f"{case['name']} / {step}: not in Radial's namespace"
            children = [child.tag.removeprefix(NS) for child in root]
            assert _follows(children, REPLY_SEQUENCES[name]), f"{case['name']} / {step}: {children}"
            for child in root:
                assert (child.text or "").strip() or len(child), f"{case['name']} / {step}: empty <{child.tag}>"
            seen += 1
    assert seen >= 11
