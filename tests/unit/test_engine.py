"""engine: an operation's steps run against an in-process provider (a scripted ASGI app).

Each test checks what the provider received (method, URL, query, headers, body) and what
NewStore gets back (status and body), including every failure path's error body.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from gateway import contracts as contract

from gateway.runtime import engine
from gateway.runtime.trace import Answered, Extracted, OutboundRequest, RuleMatched, Sent, Skipped
from tests.unit.support import HEAD, TOKEN, Failing, ScriptedProvider, compile_ok, provider_of, run

MAPPING = HEAD + """\
headers: {Accept: application/json, X-Region: "{{ vars.region }}"}
errors:
  - status: 404
    error_code: card_not_found
    message: No such card.
  - status: 429
    error_code: rate_limit
    message: Slow down.
    retry: true
  - match: "error.code == 'blocked'"
    error_code: card_blocked
    message: "Blocked ({{ response.error.reason }})."
    accepted: true
    details: {reason: error.reason}
operations:
  balance:
    steps:
      - name: lookup
        request:
          method: GET
          path: "/cards/{{ request.identifier.number | card_number | urlsegment }}"
          query: {pin: "{{ request.identifier.pin }}", store: "{{ (request.metadata or {}).get('store_id') }}"}
        success: "status == 'ok'"
        errors:
          - match: "status == 'frozen'"
            error_code: card_frozen
            message: The card is frozen.
          - status: 404
            match: "error.code == 'gone'"
            error_code: card_gone
            message: The card is gone.
        extract: {minor: balance.minor, currency: balance.currency}
    response:
      value: "{{ steps.lookup.minor | from_minor(steps.lookup.currency) }}"
      currency: "{{ steps.lookup.currency }}"
  issue:
    errors:
      - status: 409
        error_code: duplicate
        message: Already issued.
    steps:
      - name: create
        request:
          path: /cards
          headers:
            Idempotency-Key: "{{ idempotence_key | derive('issue') if idempotence_key else none }}"
            x-region: "{{ vars.region | upper }}"
          json:
            amount: "{{ request.amount.value | to_minor(request.amount.currency) }}"
            currency: "{{ request.amount.currency }}"
            name: "{{ request.customer.name | default(omit, true) }}"
            email: "{{ request.customer.email }}"
        extract: {id: id}
      - name: fetch
        request:
          method: GET
          path: "/cards/by-id/{{ steps.create.id | urlsegment }}"
        extract: {number: card.number, pin: card.pin}
    response:
      identifier: {number: "{{ steps.fetch.number }}", pin: "{{ steps.fetch.pin }}"}
      amount: "{{ request.amount }}"
      idempotence_key: "{{ idempotence_key }}"
  activate:
    steps:
      - name: check
        if: "request.customer.id != 'vip'"
        request: {method: GET, path: /checks}
        extract: {ok: ok}
      - name: act
        request:
          path: "/cards/{{ request.card_number | urlsegment }}/activate"
          form:
            amount: "{{ request.amount.value }}"
            key: "{{ idempotence_key }}"
            hook: "{{ webhook_id }}"
            at: "{{ now | rfc3339 }}"
            checked: "{{ steps.check.ok }}"
        extract: {number: number}
    response:
      identifier: {number: "{{ steps.act.number }}"}
  deactivate:
    steps:
      - name: disable
        request:
          url: "https://other.provider.test/deactivate"
          xml: "<Off><Card>{{ request.card_number }}</Card><Store>{{ request.store_id }}</Store></Off>"
        parse: xml
        extract: {at: "Result.At"}
    response:
      deactivated_at: "{{ steps.disable.at }}"
"""

CARD = "6006 4911-1111 1111"
BALANCE = {"identifier": {"number": CARD, "pin": "1234"}, "metadata": {"store_id": "s-9"}}
ISSUE = {"amount": {"value": 10.5, "currency": "USD"}, "customer": {"id": "c1", "name": "Jay"}, "idempotence_key": "k-1"}
ACTIVATE = {"card_number": "6006", "amount": {"value": 5, "currency": "USD"}, "customer": {"id": "c1"}, "idempotence_key": "k-2"}
OK_CARD = (200, {"status": "ok", "balance": {"minor": 5000, "currency": "USD"}})


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    return provider_of(compile_ok(tmp_path_factory.mktemp("engine"), MAPPING))


def balance_app(reply=OK_CARD):
    return ScriptedProvider({"GET /api/cards/6006491111111111": reply})


# -- single step: request out, answer extracted, response in ---------------------------------

def test_single_step_sends_the_rendered_request(provider):
    app = balance_app()
    out = run(provider, app, "balance", BALANCE)
    [call] = app.calls
    assert (call.method, call.path) == ("GET", "/api/cards/6006491111111111")
    assert sorted(call.query) == [("pin", "1234"), ("store", "s-9")]
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["accept"] == "application/json" and call.headers["x-region"] == "eu"
    assert call.body == b""
    assert out.status == 200 and out.state.calls == 1 and out.state.sent is True


def test_extracted_values_become_newstores_response(provider):
    out = run(provider, balance_app((200, {"status": "ok", "balance": {"minor": 1234, "currency": "EUR"}})), "balance", BALANCE)
    assert out.body == {"value": 12.34, "currency": "EUR"}


def test_money_stays_exact_decimal_end_to_end(provider):
    app = balance_app((200, b'{"status": "ok", "balance": {"minor": 900719925474099301, "currency": "KWD"}}',
                       {"content-type": "application/json"}))
    out = run(provider, app, "balance", BALANCE)
    assert out.status == 200 and out.raw == b'{"value":900719925474099.301,"currency":"KWD"}'  # no float rounding


def test_a_null_query_value_is_left_out(provider):
    app = balance_app()
    run(provider, app, "balance", {"identifier": {"number": CARD}})
    assert app.calls[0].query == []


def test_a_vars_value_reaches_the_provider(tmp_path):
    provider = provider_of(compile_ok(tmp_path, MAPPING), vars={"region": "us", "base_url": "https://b.test/v2"})
    app = ScriptedProvider({"GET /v2/cards/6006491111111111": OK_CARD})
    out = run(provider, app, "balance", BALANCE)
    assert out.status == 200 and app.calls[0].headers["x-region"] == "us"


# -- several steps: steps.x references -------------------------------------------------------

def issue_app(card_pin="9876"):
    return ScriptedProvider({
        "POST /api/cards": (201, {"id": "card/7"}),
        "GET /api/cards/by-id/card%2F7": (200, {"card": {"number": "6006000077777777", "pin": card_pin}}),
    })


def test_multi_step_reads_an_earlier_steps_extract(provider):
    app = issue_app()
    out = run(provider, app, "issue", ISSUE)
    assert [c.path for c in app.calls] == ["/api/cards", "/api/cards/by-id/card%2F7"]  # the id went through urlsegment
    assert out.status == 200 and out.state.calls == 2
    assert out.body == {"identifier": {"number": "6006000077777777", "pin": "9876"},
                        "amount": {"value": 10.5, "currency": "USD"}, "idempotence_key": "k-1"}


def test_json_body_types_omit_and_null(provider):
    app = issue_app()
    run(provider, app, "issue", ISSUE)
    create = app.calls[0]
    assert create.headers["content-type"] == "application/json"
    assert create.json() == {"amount": 1050, "currency": "USD", "name": "Jay", "email": None}
    app = issue_app()
    run(provider, app, "issue", {**ISSUE, "customer": {"id": "c1"}})
    assert "name" not in app.calls[0].json()


def test_headers_idempotency_key_and_a_step_header_replacing_the_mappings(provider):
    app = issue_app()
    run(provider, app, "issue", ISSUE)
    headers = app.calls[0].headers
    assert headers["idempotency-key"] == "k-1-issue"
    assert headers["x-region"] == "EU"  # the step's `x-region` replaced the mapping's `X-Region`, whatever the case
    app = issue_app()
    run(provider, app, "issue", {k: v for k, v in ISSUE.items() if k != "idempotence_key"})
    assert "idempotency-key" not in app.calls[0].headers  # a header that renders to none is left out


def test_a_null_response_field_is_left_out(provider):
    out = run(provider, issue_app(card_pin=None), "issue", ISSUE)
    assert out.status == 200 and out.body["identifier"] == {"number": "6006000077777777"}


def test_a_step_whose_if_is_false_is_skipped_and_its_extracts_are_null(provider):
    app = ScriptedProvider({"GET /api/checks": (200, {"ok": "yes"}), "POST /api/cards/6006/activate": (200, {"number": "6006"})})
    run(provider, app, "activate", ACTIVATE)
    assert [c.path for c in app.calls] == ["/api/checks", "/api/cards/6006/activate"]
    assert dict(app.calls[1].form())["checked"] == "yes"
    app.calls.clear()
    out = run(provider, app, "activate", {**ACTIVATE, "customer": {"id": "vip"}}, trace=True)
    assert [c.path for c in app.calls] == ["/api/cards/6006/activate"]
    assert "checked" not in dict(app.calls[0].form())  # null form fields are left out
    assert out.status == 200 and Skipped("check") in out.state.trace


def test_form_body_and_template_context_names(provider):
    app = ScriptedProvider({"GET /api/checks": (200, {"ok": 1}), "POST /api/cards/6006/activate": (200, {"number": "6006"})})
    now = dt.datetime(2026, 11, 22, 4, 1, 38, tzinfo=dt.UTC)
    out = run(provider, app, "activate", ACTIVATE, now=now)
    call = app.calls[1]
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(call.form())
    assert form["amount"] == "5" and form["key"] == "k-2" and form["at"] == "2026-11-22T04:01:38Z"
    assert len(form["hook"]) == 32 and int(form["hook"], 16) >= 0
    assert out.body == {"identifier": {"number": "6006"}}


def test_webhook_id_differs_per_run(provider):
    app = ScriptedProvider({"GET /api/checks": (200, {"ok": 1}), "POST /api/cards/6006/activate": (200, {"number": "6006"})})
    run(provider, app, "activate", ACTIVATE)
    run(provider, app, "activate", ACTIVATE)
    hooks = [dict(c.form())["hook"] for c in app.calls if c.method == "POST"]
    assert len(hooks) == 2 and hooks[0] != hooks[1]


def test_xml_body_xml_answer_and_credentials_kept_from_another_host(provider):
    app = ScriptedProvider({"POST /deactivate": (200, "<Result><At>2026-01-02T03:04:05Z</At></Result>",
                                                 {"content-type": "application/xml"})})
    out = run(provider, app, "deactivate", {"card_number": "<6006>", "store_id": "s&1"})
    [call] = app.calls
    assert call.headers["host"] == "other.provider.test"
    assert "authorization" not in call.headers  # the token goes only to base_url's origin
    assert call.body == b"<Off><Card>&lt;6006&gt;</Card><Store>s&amp;1</Store></Off>"
    assert call.headers["content-type"].startswith("application/xml")
    assert out.status == 200 and out.body == {"deactivated_at": "2026-01-02T03:04:05Z"}


# -- error rules -> NewStore's error body ----------------------------------------------------

def test_a_mapping_rule_by_status(provider):
    out = run(provider, balance_app((404, {"error": {"code": "nope"}})), "balance", BALANCE)
    assert out.status == 400
    assert out.body == {"error_code": "card_not_found", "message": "No such card.", "request_accepted": False,
                        "details": {"step": "lookup", "upstream_status": 404}}


def test_a_step_rule_is_tried_before_the_mappings(provider):
    out = run(provider, balance_app((404, {"error": {"code": "gone"}})), "balance", BALANCE)
    assert (out.status, out.code) == (400, "card_gone")


def test_a_match_rule_inside_a_200(provider):
    out = run(provider, balance_app((200, {"status": "frozen"})), "balance", BALANCE)
    assert (out.status, out.code, out.body["details"]["upstream_status"]) == (400, "card_frozen", 200)


def test_a_rule_message_reads_the_answer_and_details_extract(provider):
    out = run(provider, balance_app((403, {"error": {"code": "blocked", "reason": "fraud"}})), "balance", BALANCE)
    assert out.status == 400 and out.body == {
        "error_code": "card_blocked", "message": "Blocked (fraud).", "request_accepted": True,
        "details": {"step": "lookup", "upstream_status": 403, "reason": "fraud"}}


def test_an_operation_rule_applies_to_its_steps(provider):
    app = ScriptedProvider({"POST /api/cards": (409, {})})
    out = run(provider, app, "issue", ISSUE)
    assert (out.status, out.code) == (400, "duplicate") and len(app.calls) == 1


def test_a_retry_rule_is_503(provider):
    out = run(provider, balance_app((429, {})), "balance", BALANCE)
    assert (out.status, out.code, out.body["request_accepted"]) == (503, "rate_limit", False)


@pytest.mark.parametrize(("reply", "status", "code"), [
    ((500, {"oops": 1}), 502, "provider_error"),
    ((400, {"unexplained": 1}), 502, "provider_unexpected_response"),
    ((200, {"status": "pending"}), 502, "provider_unexpected_response"),  # 2xx that fails `success`
    ((200, b"{not json", {"content-type": "application/json"}), 502, "provider_bad_response"),
])
def test_answers_no_rule_explains_are_unknown_outcomes(provider, reply, status, code):
    out = run(provider, balance_app(reply), "balance", BALANCE)
    assert (out.status, out.code) == (status, code)
    assert out.body["request_accepted"] is True and out.body["details"]["step"] == "lookup"


def test_an_unreachable_provider_is_502_and_not_accepted(provider):
    transport = Failing(httpx.ConnectError("refused"))
    out = run(provider, transport, "balance", BALANCE)
    assert (out.status, out.code, out.body["request_accepted"]) == (502, "provider_unreachable", False)
    assert len(transport.requests) == 1 and out.state.sent is False


def test_a_timeout_is_504_and_accepted(provider):
    out = run(provider, Failing(httpx.ReadTimeout("slow")), "balance", BALANCE)
    assert (out.status, out.code, out.body["request_accepted"]) == (504, "provider_timeout", True)


def test_unreachable_in_a_later_step_is_accepted(provider):
    class SecondFails(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            if request.method == "GET":
                raise httpx.ConnectError("refused")
            return httpx.Response(201, json={"id": "x"})

    out = run(provider, SecondFails(), "issue", ISSUE)
    assert (out.code, out.body["request_accepted"], out.body["details"]["step"]) == ("provider_unreachable", True, "fetch")


# -- null handling and mapping errors --------------------------------------------------------

def test_a_null_from_an_earlier_step_in_a_path_is_a_mapping_error(provider):
    app = ScriptedProvider({"POST /api/cards": (201, {"no_id": True})})
    out = run(provider, app, "issue", ISSUE)
    assert len(app.calls) == 1  # the second request was never sent
    assert (out.status, out.code, out.body["request_accepted"]) == (502, "mapping_error", True)
    assert out.body["details"]["step"] == "fetch" and out.body["details"]["operation"] == "issue"
    assert "m.yaml" in out.body["message"]


def test_null_in_an_xml_body_is_a_mapping_error_before_sending(provider):
    app = ScriptedProvider()
    out = run(provider, app, "deactivate", {"card_number": "6006"})  # no store_id
    assert app.calls == []
    assert (out.status, out.code, out.body["request_accepted"]) == (502, "mapping_error", False)


def test_a_response_newstore_would_refuse_is_a_mapping_error(provider):
    out = run(provider, balance_app((200, {"status": "ok", "balance": {"minor": 5, "currency": "DOLLARS"}})), "balance", BALANCE)
    assert (out.status, out.code) == (502, "mapping_error") and "response" in out.body["message"]


def test_null_extracted_into_a_filter_is_a_mapping_error(provider):
    out = run(provider, balance_app((200, {"status": "ok", "balance": {}})), "balance", BALANCE)
    assert (out.status, out.code, out.body["request_accepted"]) == (502, "mapping_error", True)


# -- NewStore's input that no provider can use ------------------------------------------------

@pytest.mark.parametrize("number", ["..", "."])
def test_a_card_number_that_would_change_the_url_is_refused_unsent(provider, number):
    app = ScriptedProvider({"POST /api/cards/x/activate": (200, {"number": "x"}), "GET /api/checks": (200, {"ok": 1})})
    out = run(provider, app, "activate", {**ACTIVATE, "card_number": number, "customer": {"id": "vip"}})
    assert app.calls == []
    assert (out.status, out.code, out.body["request_accepted"]) == (400, "invalid_request", False)
    assert out.body["details"] == {"step": "act"}


def test_url_refusal_after_an_earlier_step_says_accepted(provider):
    app = ScriptedProvider({"GET /api/checks": (200, {"ok": 1})})
    out = run(provider, app, "activate", {**ACTIVATE, "card_number": ".."})
    assert [c.path for c in app.calls] == ["/api/checks"]
    assert (out.status, out.code, out.body["request_accepted"]) == (400, "invalid_request", True)


def test_a_providers_value_that_would_change_the_url_is_its_fault(provider):
    app = ScriptedProvider({"POST /api/cards": (201, {"id": ".."})})
    out = run(provider, app, "issue", ISSUE)
    assert len(app.calls) == 1
    assert (out.status, out.code, out.body["request_accepted"]) == (502, "provider_bad_response", True)


def test_an_encoded_dot_segment_is_sent_as_text_not_as_a_dot_segment(provider):
    app = ScriptedProvider({"POST /api/cards/%252e%252e/activate": (200, {"number": "x"})})
    out = run(provider, app, "activate", {**ACTIVATE, "card_number": "%2e%2e", "customer": {"id": "vip"}})
    assert out.status == 200 and [c.path for c in app.calls] == ["/api/cards/%252e%252e/activate"]


def test_a_card_number_of_only_dashes_is_an_input_error(provider):
    app = balance_app()
    out = run(provider, app, "balance", {"identifier": {"number": "- -"}})
    assert app.calls == [] and (out.status, out.code, out.body["request_accepted"]) == (400, "invalid_request", False)


# -- trace, dry run, context ------------------------------------------------------------------

def test_the_trace_records_each_event(provider):
    out = run(provider, balance_app(), "balance", BALANCE, trace=True)
    events = [(type(e), e.step) for e in out.state.trace]
    assert events == [(Sent, "lookup"), (Answered, "lookup"), (Extracted, "lookup")]
    assert out.state.trace[0].request.method == "GET" and out.state.trace[1].status == 200
    assert out.state.trace[2].values == {"minor": 5000, "currency": "USD"}
    out = run(provider, balance_app((200, {"status": "frozen"})), "balance", BALANCE, trace=True)
    assert isinstance(out.state.trace[-1], RuleMatched) and out.state.trace[-1].error_code == "card_frozen"


def decoded(operation, body):
    return contract.decode_request(operation, json.dumps(body).encode())


def test_dry_run_renders_requests_without_sending(provider):
    [(name, kind, detail)] = engine.dry_run(provider, provider.mapping.operations["balance"], decoded("balance", BALANCE))
    assert isinstance(detail, OutboundRequest)
    method, url, params, headers, content = detail.method, detail.url, detail.params, detail.headers, detail.content
    assert (name, kind, method, url) == ("lookup", "request", "GET", "https://provider.test/api/cards/6006491111111111")
    assert params == {"pin": "1234", "store": "s-9"} and headers["X-Region"] == "eu" and content is None


def test_dry_run_says_which_steps_need_answers(provider):
    kinds = [(s, k) for s, k, _ in engine.dry_run(provider, provider.mapping.operations["issue"], decoded("issue", ISSUE))]
    assert kinds == [("create", "request"), ("fetch", "unknown")]


def test_dry_run_skipped_and_refused(provider):
    op = provider.mapping.operations["activate"]
    out = engine.dry_run(provider, op, decoded("activate", {**ACTIVATE, "customer": {"id": "vip"}}))
    assert [(s, k) for s, k, _ in out] == [("check", "skipped"), ("act", "request")]
    out = engine.dry_run(provider, op, decoded("activate", {**ACTIVATE, "card_number": ".."}))
    assert [(s, k) for s, k, _ in out] == [("check", "request"), ("act", "refused")]
    assert "400 invalid_request" in out[1][2]


def test_gift_card_context_names(provider):
    op = provider.mapping.operations["issue"]
    ctx = engine.context(provider, op, decoded("issue", ISSUE), {})
    assert {"request", "steps", "vars", "now", "webhook_id", "idempotence_key"} <= set(ctx)
    assert ctx["idempotence_key"] == "k-1"
    assert ctx["idempotency_key"] is None and ctx["instrument_id"] is None and ctx["available"] is None
    assert ctx["vars"]["region"] == "eu" and ctx["now"].tzinfo is not None
    assert ctx["request"].amount.value == Decimal("10.5")
