"""No value NewStore sends may change which provider endpoint is called; null is never sent as
text; unusable input is a 400 with no provider call; an empty idempotence_key is refused.

Each case here was a real failure of the shipped gateway (an attack run on loopback).
"""

from __future__ import annotations

import logging

import pytest

from gateway.language.templating import Where, compile_string
from gateway.language.urls import URL_ENV, UrlRefused, UrlTemplate, compile_sources

from .conftest import (
    ROOT,
    client_for,
    sandbox_provider,
    start_simulator,
    webhook_records,
    write_config,
)
from .newstore_spec import check_error

VOUCHERIFY = ROOT / "simulators" / "voucherify"


@pytest.fixture(scope="module")
def voucherify(tmp_path_factory):
    yield from start_simulator("simulators.voucherify", tmp_path_factory)


@pytest.fixture
def both(sandbox, voucherify, tmp_path):
    voucherify.reset()
    config = write_config(tmp_path, {
        "sandbox": sandbox_provider(sandbox),
        "voucherify": {
            "mapping": str(ROOT / "mappings" / "voucherify.yaml"), "vars": {"base_url": voucherify.url, "currency": "EUR"},
            "secrets": {"app_id": {"file": str(VOUCHERIFY / "voucherify.app_id")},
                        "app_token": {"file": str(VOUCHERIFY / "voucherify.app_token")}},
            "inbound": "none"}}, idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        yield client


def _refused(response, fragment: str = "") -> dict:
    assert response.status_code == 400, response.text
    body = response.json()
    check_error(body)
    assert body["error_code"] == "invalid_request" and body["request_accepted"] is False, body
    assert fragment in body["message"], body["message"]
    return body


DOTS = ["..", "."]  # encoded dots go through `urlsegment` as `%252e`: a harmless literal (see the unit cases)


@pytest.mark.parametrize("number", DOTS)
def test_dot_segment_card_numbers_never_reach_the_sandbox(both, sandbox, number):
    # Before: ".." made POST /v1/cards/../activate, which httpx collapsed to POST /v1/activate.
    response = both.post("/sandbox/gift_card/activate", json={
        "card_number": number, "amount": {"value": 10, "currency": "USD"}, "customer": {"id": "c1"},
        "idempotence_key": f"dots-{number}"})
    _refused(response, "path segment")
    assert sandbox.calls() == []


@pytest.mark.parametrize("number", DOTS)
def test_dot_segment_codes_never_list_voucherify_vouchers(both, voucherify, number):
    # Before: "." made GET /v1/vouchers/. -> GET /v1/vouchers: the list of every voucher.
    _refused(both.post("/voucherify/gift_card/balance", json={"identifier": {"number": number}}), "path segment")
    assert voucherify.calls() == []


@pytest.mark.parametrize("number", ["   ", " - - ", "--"])
def test_a_card_number_of_separators_only_is_unusable_input(both, sandbox, number):
    # Before: normalised to "" and sent as /v1/cards//activate; answered 502 request_accepted: true.
    body = _refused(both.post("/sandbox/gift_card/activate", json={
        "card_number": number, "amount": {"value": 10, "currency": "USD"}, "customer": {"id": "c1"},
        "idempotence_key": "blank-card"}))
    assert "card number is empty" in body["message"]
    assert body["details"] == {"step": "activate"}
    assert sandbox.calls() == []


def test_a_blank_voucher_code_is_unusable_input(both, voucherify):
    # `trim` leaves nothing: the path would end in an empty segment (/v1/vouchers/ lists vouchers).
    _refused(both.post("/voucherify/gift_card/deactivate", json={"card_number": "   ", "idempotence_key": "blank-v"}),
             "empty where the provider's URL needs a path segment")
    assert voucherify.calls() == []


NULL_IN_REQUEST = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
secrets: [api_key]
auth: {type: header, headers: {X-Api-Key: api_key}}
operations:
  balance:
    steps:
      - name: lookup
        request:
          path: /v1/cards/lookup
          json: {number: "6006491111111111", pin: "480163"}
        extract: {missing: card.no_such_field, minor: card.balance.amount_minor}
      - name: use
        request:
          method: POST
          %s
          json: {number: "6006491111111111", pin: "480163"}
        extract: {minor: card.balance.amount_minor}
    response: {value: 0, currency: USD}
"""


@pytest.mark.parametrize("where", [
    'path: "/v1/cards/{{ steps.lookup.missing | urlsegment }}/activate"',  # the Voucherify case
    'path: "/v1/cards/{{ steps.lookup.missing }}/activate"',
    'path: "{{ steps.lookup.missing }}"',
    'path: /v1/cards/lookup\n          query: {ref: "card-{{ steps.lookup.missing }}"}',
    'path: /v1/cards/lookup\n          headers: {X-Ref: "ref-{{ steps.lookup.missing | trim }}"}',
])
def test_null_rendered_into_a_url_query_or_header_is_a_mapping_error(sandbox, tmp_path, where):
    # Before: POST /v1/cards/None/activate - a card named "None" would have been loaded.
    mapping = tmp_path / "nulls.yaml"
    mapping.write_text(NULL_IN_REQUEST % where)
    config = write_config(tmp_path, {"p": sandbox_provider(sandbox, mapping)})
    with client_for(config) as client:
        response = client.post("/p/gift_card/balance", json={"identifier": {"number": "6006491111111111"}})
    assert response.status_code == 502, response.text
    body = response.json()
    check_error(body)
    assert body["error_code"] == "mapping_error" and body["details"]["step"] == "use", body
    assert "null" in body["message"]
    assert [c["path"] for c in sandbox.calls()] == ["/v1/cards/lookup"]  # the second call never left


def test_a_null_query_value_or_header_on_its_own_is_still_left_out(sandbox, tmp_path):
    # The documented rule for a whole value: `{{ x }}` that is null leaves the parameter out.
    mapping = tmp_path / "nulls.yaml"
    mapping.write_text(NULL_IN_REQUEST % 'path: /v1/cards/lookup\n          query: {ref: "{{ steps.lookup.missing }}"}\n'
                       '          headers: {X-Ref: "{{ steps.lookup.missing }}"}')
    config = write_config(tmp_path, {"p": sandbox_provider(sandbox, mapping)})
    with client_for(config) as client:
        response = client.post("/p/gift_card/balance", json={"identifier": {"number": "6006491111111111"}})
    assert response.status_code == 200, response.text
    second = sandbox.calls()[1]
    assert second["query"] == "" and "x-ref" not in second["headers"]


@pytest.mark.parametrize("key", ["", "   ", "\t"])
def test_an_empty_idempotence_key_is_refused(both, sandbox, key):
    # Before: "" turned idempotency off and two identical issues made two cards.
    issue = {"amount": {"value": 25, "currency": "USD"}, "customer": {"id": "c1"}, "idempotence_key": key}
    for _ in range(2):
        body = _refused(both.post("/sandbox/gift_card/issue", json=issue), "`idempotence_key` is empty")
        assert "$.idempotence_key" in body["message"]
    assert sandbox.calls() == []


def test_a_missing_idempotence_key_is_served_with_a_warning(both, sandbox, caplog):
    issue = {"amount": {"value": 25, "currency": "USD"}, "customer": {"id": "c1"}}
    response = both.post("/sandbox/gift_card/issue", json=issue)
    assert response.status_code == 200, response.text
    [line] = webhook_records(caplog, 1, containing='"operation":"issue"')
    assert line.levelno == logging.WARNING and "no idempotence_key" in line.getMessage()


# -- the rules themselves, without a provider ------------------------------------------------

def _template(source: str, is_path: bool = True) -> UrlTemplate:
    value = compile_string(source, Where("m.yaml", "path"), env=URL_ENV, native=False)
    return UrlTemplate(value, is_path, compile_sources(source))


BASE = "https://api.provider.example/v2"


@pytest.mark.unit
@pytest.mark.parametrize(("source", "ctx", "url"), [
    ("/cards/{{ request.n | urlsegment }}/x", {"n": "a/../b"}, f"{BASE}/cards/a%2F..%2Fb/x"),
    ("/cards/{{ request.n | urlsegment }}/x", {"n": "%2e%2e"}, f"{BASE}/cards/%252e%252e/x"),
    ("/cards/{{ request.n }}", {"n": "6006"}, f"{BASE}/cards/6006"),
    ("/cards/{{ request.n }}.xml", {"n": "."}, f"{BASE}/cards/..xml"),  # "..xml" is not a dot segment
    ("/cards?code={{ request.n }}", {"n": "a=b/c?"}, f"{BASE}/cards?code=a=b/c?"),
])
def test_values_that_keep_the_endpoint_are_allowed(source, ctx, url):
    assert _template(source).render({"request": ctx}, BASE) == url


@pytest.mark.unit
@pytest.mark.parametrize(("source", "ctx", "fragment"), [
    ("/cards/{{ request.n }}/x", {"n": "a/b"}, "path segment"),
    ("/cards/{{ request.n }}/x", {"n": "a?b"}, "query string"),
    ("/cards/{{ request.n }}/x", {"n": "a#b"}, "fragment"),
    ("/cards/{{ request.n }}/x", {"n": "a\\b"}, "path segment"),
    ("/cards/{{ request.n }}/x", {"n": "a\r\nb"}, "control characters"),
    ("/cards/{{ request.n }}{{ request.m }}/x", {"n": ".", "m": "."}, "`.` or `..`"),
    ("/cards/.{{ request.n }}/x", {"n": "."}, "`.` or `..`"),
    ("/cards/{{ request.n }}/x", {"n": "%2e%2e"}, "`.` or `..`"),
    ("/cards/{{ request.n }}/x", {"n": "%2E."}, "`.` or `..`"),
    ("/cards/{{ request.n }}/x", {"n": ".%2e"}, "`.` or `..`"),
    ("/cards/{{ request.n }}/x", {"n": "%2E"}, "`.` or `..`"),
    ("/cards/{{ request.n }}", {"n": ""}, "empty"),
    ("/cards?code={{ request.n }}", {"n": "x&admin=1"}, "query parameters"),
    ("/cards?code={{ request.n }}", {"n": "x#y"}, "query parameters"),
    ("/cards/{{ request.n }}", {"n": "x" * 9000}, "longer than 8192"),
])
def test_values_that_would_change_the_endpoint_are_refused(source, ctx, fragment):
    with pytest.raises(UrlRefused) as info:
        _template(source).render({"request": ctx}, BASE)
    assert fragment in info.value.message and info.value.source == "request"


@pytest.mark.unit
def test_a_url_may_start_with_a_link_from_an_answer_but_never_with_newstores_input():
    link = _template("{{ steps.first.next }}", is_path=False)
    assert link.render({"steps": {"first": {"next": "https://elsewhere.example/a?b=c"}}}, BASE) == \
        "https://elsewhere.example/a?b=c"
    with pytest.raises(UrlRefused) as info:
        _template("{{ request.n }}", is_path=False).render({"request": {"n": "https://evil.example/"}}, BASE)
    assert info.value.source == "request" and "host" in info.value.message
    with pytest.raises(UrlRefused):
        _template("https://{{ request.n }}.provider.example/x", is_path=False).render(
            {"request": {"n": "evil.example#"}}, BASE)


@pytest.mark.unit
def test_values_from_an_answer_are_refused_as_the_providers_fault():
    with pytest.raises(UrlRefused) as info:
        _template("/vouchers/{{ steps.v.code | urlsegment }}/enable").render({"steps": {"v": {"code": ".."}}}, BASE)
    assert info.value.source == "answer"


@pytest.mark.unit
def test_configured_values_are_trusted():
    # vars are the operator's: a configured prefix may hold slashes.
    assert _template("{{ vars.prefix }}/cards").render({"vars": {"prefix": "/api/v3"}}, BASE) == f"{BASE}/api/v3/cards"
