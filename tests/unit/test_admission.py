"""Webhook admission: what is refused before any provider call, with the spec's 4xx body.

The whole app runs in-process (Litestar's TestClient, no port); the provider is a scripted ASGI
app behind the app's transport seam, so each test can prove nothing reached it.
"""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest
from litestar.testing import TestClient

from gateway import contracts as contract

from gateway.runtime import admission as inbound
from gateway.http.app import create_app
from gateway.config.secrets import Secret
from gateway.errors import RequestRejected, UnsupportedMediaType
from gateway.plan import GatewayPlan, InboundPlan
from tests.newstore_spec import check_error, check_psp_error
from tests.unit.support import HEAD, ScriptedProvider, compile_ok, provider_of

MAPPING = HEAD + """\
operations:
  balance:
    steps:
      - name: lookup
        request: {method: GET, path: "/cards/{{ request.identifier.number | urlsegment }}"}
        extract: {minor: minor, currency: currency}
    response:
      value: "{{ steps.lookup.minor | from_minor(steps.lookup.currency) }}"
      currency: "{{ steps.lookup.currency }}"
  issue:
    steps:
      - name: create
        request: {path: /cards, json: {amount: "{{ request.amount.value | to_minor(request.amount.currency) }}"}}
        extract: {number: number}
    response: {identifier: {number: "{{ steps.create.number }}"}}
  activate: {unsupported: cards are sold active}
  create_instrument:
    steps:
      - name: hold
        request: {path: /holds, json: {amount: "{{ request.arguments.amount }}"}}
        extract: {id: id}
    response: [{transaction_id: "{{ steps.hold.id }}", instrument_id: "{{ steps.hold.id }}", currency: USD}]
  capture:
    steps:
      - name: cap
        request: {path: "/holds/{{ instrument_id | urlsegment }}/capture"}
        extract: {id: id}
    response: [{transaction_id: "{{ steps.cap.id }}", instrument_id: "{{ instrument_id }}", currency: USD}]
"""
CARD_ANSWER = (200, {"minor": 700, "currency": "USD"})


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    return provider_of(compile_ok(tmp_path_factory.mktemp("admission"), MAPPING))


@pytest.fixture
def upstream():
    return ScriptedProvider({"GET /api/cards/6006": CARD_ANSWER, "POST /api/holds/h1/capture": (200, {"id": "c"})})


@pytest.fixture
def client(provider, upstream):
    locked = dataclasses.replace(provider, name="locked", inbound=InboundPlan("Authorization", Secret("Bearer s3cret")))
    plan = GatewayPlan("unit", {"p": provider, "locked": locked}, max_body_bytes=4096)
    app = create_app(plan, transport_factory=lambda _p: httpx.ASGITransport(app=upstream))
    with TestClient(app) as c:
        yield c


def post(client, path, body, **headers):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"content-type": "application/json", **headers})


def test_a_good_request_reaches_the_provider(client, upstream):
    r = post(client, "/p/gift_card/balance", {"identifier": {"number": "6006"}})
    assert (r.status_code, r.json()) == (200, {"value": 7, "currency": "USD"})
    assert len(upstream.calls) == 1


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "malformed JSON"),
    (b"", "body is empty"),
    (b"   ", "body is empty"),
    (b"[1, 2]", "at `$`"),
    (b'{"identifier": {}}', "`$.identifier`"),  # missing number
    (b'{"identifier": {"number": ""}}', "`$.identifier.number`"),
    (b'{"identifier": {"number": 6006}}', "`$.identifier.number`"),
    (b'{"identifier": {"number": "6006"}, "metadata": "x"}', "`$.metadata`"),
    (b"\xff\xfe", "malformed JSON"),
    (b'{"identifier": {"number": "6006"}, "metadata": {"a": ' + b"[" * 1900 + b"]" * 1900 + b"}}", "nested too deeply"),
])
def test_a_malformed_balance_body_is_400_unsent(client, upstream, body, words):
    r = post(client, "/p/gift_card/balance", body)
    assert r.status_code == 400, r.text
    payload = r.json()
    check_error(payload)
    assert payload["error_code"] == "invalid_request" and payload["request_accepted"] is False
    assert words in payload["message"]
    assert upstream.calls == []


@pytest.mark.parametrize(("amount", "words"), [
    ({"value": 10.005, "currency": "USD"}, "more decimal places than USD"),
    ({"value": -1, "currency": "USD"}, "value"),
    ({"value": 10, "currency": "XXQ"}, "currency"),
    ({"value": 10, "currency": "US"}, "`$.amount.currency`"),
    ({"value": "10", "currency": "USD"}, "value"),
])
def test_an_amount_newstore_should_not_send_is_400_unsent(client, upstream, amount, words):
    r = post(client, "/p/gift_card/issue", {"amount": amount, "customer": {"id": "c"}, "idempotence_key": "k"})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_request"
    assert words in r.json()["message"] and upstream.calls == []


@pytest.mark.parametrize("key", ["", "   "])
def test_an_empty_idempotence_key_is_refused(client, upstream, key):
    r = post(client, "/p/gift_card/issue", {"amount": {"value": 1, "currency": "USD"}, "customer": {"id": "c"},
                                           "idempotence_key": key})
    assert r.status_code == 400 and "`idempotence_key` is empty" in r.json()["message"] and upstream.calls == []


def test_wrong_content_type_is_415(client, upstream):
    r = client.post("/p/gift_card/balance", content=b'{"identifier": {"number": "6006"}}', headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()["error_code"]) == (415, "unsupported_media_type")
    check_error(r.json())
    assert upstream.calls == []


def test_a_body_over_the_limit_is_413(client, upstream):
    r = post(client, "/p/gift_card/balance", {"identifier": {"number": "6006"}, "metadata": {"x": "y" * 5000}})
    assert (r.status_code, r.json()["error_code"]) == (413, "request_too_large") and upstream.calls == []


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/nobody/gift_card/balance", 400, "unknown_provider"),
    ("/p/gift_card/refill", 400, "unknown_operation"),
    ("/p/gift_card/activate", 400, "unsupported_operation"),  # declared unsupported
    ("/p/gift_card/deactivate", 400, "unsupported_operation"),  # not mapped at all
    ("/p/gift_cards/balance", 404, "not_found"),
])
def test_routing_refusals(client, upstream, path, status, code):
    r = post(client, path, {"identifier": {"number": "6006"}})
    assert (r.status_code, r.json()["error_code"], r.json()["request_accepted"]) == (status, code, False)
    assert upstream.calls == []


def test_unsupported_operation_says_why(client):
    assert "cards are sold active" in post(client, "/p/gift_card/activate", {}).json()["message"]


def test_get_is_405(client):
    r = client.get("/p/gift_card/balance")
    assert (r.status_code, r.json()["error_code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"authorization": "Bearer wrong"}, 401),
    ({"authorization": "s3cret"}, 401),
    ({"authorization": "Bearer s3cret"}, 200),
])
def test_the_inbound_key(client, upstream, headers, status):
    r = post(client, "/locked/gift_card/balance", {"identifier": {"number": "6006"}}, **headers)
    assert r.status_code == status
    assert len(upstream.calls) == (1 if status == 200 else 0)
    if status == 401:
        assert r.json()["error_code"] == "unauthorized" and "s3cret" not in r.text


def test_the_key_is_checked_before_the_body(client, upstream):
    r = post(client, "/locked/gift_card/balance", b"{not json")
    assert r.status_code == 401 and upstream.calls == []


# -- the payment contract's admission: its own error body -------------------------------------

CAPTURE = {"account_id": "a", "idempotency_key": "k", "arguments": {"amount": 5, "currency": "USD"},
           "transactions": [{"transaction_id": "h1", "instrument_id": "h1", "capture_amount": 10, "currency": "USD",
                             "reason": "authorization"}]}


@pytest.mark.parametrize(("body", "words"), [
    (b"{", "malformed JSON"),
    ({**CAPTURE, "arguments": {"amount": 0, "currency": "USD"}}, "greater than 0"),
    ({**CAPTURE, "idempotency_key": " "}, "`idempotency_key` is empty"),
    ({k: v for k, v in CAPTURE.items() if k != "transactions"}, "transactions"),
])
def test_a_malformed_payment_body_is_failed_command(client, upstream, body, words):
    r = post(client, "/p/financial_instruments/h1/_capture", body)
    assert r.status_code == 400
    check_psp_error(r.json())
    assert r.json()["error_code"] == "failed_command" and r.json()["details"]["gateway_error"] == "invalid_request"
    assert words in r.json()["message"] and upstream.calls == []


def test_a_capture_over_what_is_available_is_refused_unsent(client, upstream):
    r = post(client, "/p/financial_instruments/h1/_capture", {**CAPTURE, "arguments": {"amount": 11, "currency": "USD"}})
    assert (r.status_code, r.json()["error_code"]) == (400, "instrument_error") and upstream.calls == []
    r = post(client, "/p/financial_instruments/h1/_capture", {**CAPTURE, "idempotency_key": "k2"})
    assert r.status_code == 200 and [c.path for c in upstream.calls] == ["/api/holds/h1/capture"]


def test_unmapped_payment_operation_is_failed_command(client):
    r = post(client, "/p/financial_instruments/h1/_refund", CAPTURE)
    assert (r.status_code, r.json()["error_code"], r.json()["details"]["gateway_error"]) == \
        (400, "failed_command", "unsupported_operation")


# -- the same checks, called directly --------------------------------------------------------

def test_decode_gives_exact_decimals():
    decoded = inbound.decode("issue", b'{"amount": {"value": 10.10, "currency": "usd"}, "customer": {"id": "c"}}')
    assert str(decoded.amount.value) == "10.10" and decoded.idempotence_key is None


def test_decode_names_the_field_path():
    with pytest.raises(RequestRejected) as info:
        inbound.decode("activate", b'{"card_number": "1", "amount": {"value": 1, "currency": "USD"}, "customer": {}}')
    assert "`$.customer`" in info.value.message and "id" in info.value.message
    assert info.value.body()["request_accepted"] is False


@pytest.mark.parametrize("content_type", [None, "", "text/json", "application/jsonx", "multipart/form-data"])
def test_content_types_that_are_not_json(content_type):
    with pytest.raises(UnsupportedMediaType):
        inbound.check_content_type(content_type)


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
def test_json_content_types(content_type):
    assert inbound.check_content_type(content_type) is None


def test_admit_refuses_a_blank_key_but_not_a_missing_one():
    gift = contract.CONTRACTS["gift_card"]
    op = contract.OPERATIONS["deactivate"]
    assert gift.admit(op, inbound.decode("deactivate", b'{"card_number": "1"}'), {}) is None
    with pytest.raises(RequestRejected):
        gift.admit(op, inbound.decode("deactivate", b'{"card_number": "1", "idempotence_key": "\\t"}'), {})
