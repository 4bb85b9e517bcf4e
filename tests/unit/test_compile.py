"""compile: mapping text -> plan objects. Each test asserts what the compiled plan does or holds."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gateway.language import expressions
from gateway.language.templating import RenderError
from gateway.runtime.upstream.codecs import ENCODERS
from tests.unit.support import HEAD, compile_ok, diagnose, codes

RICH = HEAD + """\
timeout: 7
max_response_bytes: 2048
headers: {Accept: application/json, X-Region: "{{ vars.region }}"}
errors:
  - status: 404
    error_code: card_not_found
    message: No such card.
  - status: ["4xx", 503]
    match: "error.code"
    error_code: refused
    message: "Refused: {{ response.error.code }}"
    accepted: true
    retry: true
    details: {provider_code: error.code, reason: error.reason}
operations:
  balance:
    steps:
      - name: lookup
        request:
          method: GET
          path: "/cards/{{ request.identifier.number | card_number | urlsegment }}"
          query:
            pin: "{{ request.identifier.pin }}"
            fixed: "1"
          headers: {X-Store: "{{ (request.metadata or {}).get('store_id') }}"}
          timeout: 3
        parse: json
        success: "status == 'ok'"
        extract: {minor: balance.minor, currency: balance.currency}
    response:
      value: "{{ steps.lookup.minor | from_minor(steps.lookup.currency) }}"
      currency: "{{ steps.lookup.currency }}"
  issue:
    errors:
      - match: "code == 'limit'"
        error_code: over_limit
        message: Over the limit.
    steps:
      - name: create
        if: "request.amount.value > 0"
        request:
          path: /cards
          json:
            amount: "{{ request.amount.value | to_minor(request.amount.currency) }}"
            label: "card for {{ request.customer.id }}"
            email: "{{ request.customer.email }}"
            name: "{{ request.customer.name | default(omit, true) }}"
            tags: [gift, "{{ request.amount.currency }}"]
        extract: {id: id}
      - name: fetch
        request:
          method: GET
          url: "https://cards.provider.test/by-id/{{ steps.create.id | urlsegment }}"
        extract: {number: card.number}
    response:
      identifier: {number: "{{ steps.fetch.number }}"}
  activate:
    steps:
      - name: form
        request:
          path: /activate
          form: {card: "{{ request.card_number }}", amount: "{{ request.amount.value }}"}
        extract: {number: number}
    response:
      identifier: {number: "{{ steps.form.number }}"}
  deactivate:
    steps:
      - name: xml
        request:
          method: PUT
          path: /deactivate
          xml: "<Deactivate><Card>{{ request.card_number }}</Card></Deactivate>"
      - name: text
        request:
          method: DELETE
          path: /note
          text: "deactivated {{ request.card_number }}"
          content_type: text/x-note
      - name: gql
        request:
          path: /graphql
          graphql:
            query: "mutation D($id: ID!) { deactivate(id: $id) { at } }"
            variables: {id: "{{ request.card_number }}", pin: "{{ request.pin | default(omit, true) }}"}
            operation_name: D
        extract: {at: data.deactivate.at}
    response:
      deactivated_at: "{{ steps.gql.at }}"
"""


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    return compile_ok(tmp_path_factory.mktemp("rich"), RICH)


def step(plan, operation, name):
    [found] = [s for s in plan.operations[operation].steps if s.name == name]
    return found


BALANCE_CTX = {"request": {"identifier": {"number": "6006 4911-1111", "pin": "1234"}, "metadata": {"store_id": "s-9"}},
               "vars": {"region": "eu"}, "steps": {}}


def test_mapping_level_settings(rich):
    assert rich.timeout == 7
    assert rich.max_response_bytes == 2048
    assert rich.declared_secrets == ("token",)
    assert dict(rich.declared_vars) == {"base_url": "https://provider.test/api", "region": "eu"}
    assert rich.base_url.render({"vars": {"base_url": "https://x.test"}}) == "https://x.test"
    assert rich.headers.render({"vars": {"region": "us"}}) == {"Accept": "application/json", "X-Region": "us"}
    assert set(rich.operations) == {"balance", "issue", "activate", "deactivate"}


def test_defaults_when_a_mapping_says_nothing(tmp_path):
    plan = compile_ok(tmp_path, """\
        base_url: https://p.test
        operations:
          balance:
            steps: [{name: s, request: {path: /b}}]
            response: {value: 1, currency: USD}
        """)
    assert plan.timeout == 10
    assert plan.max_response_bytes == 1024 * 1024
    assert plan.declared_secrets == () and dict(plan.declared_vars) == {}
    s = plan.operations["balance"].steps[0]
    assert s.method == "POST" and s.parse == "auto" and s.timeout is None
    assert s.body.kind == "none" and s.body.value is None
    assert s.success is None and s.condition is None and s.errors == () and s.extract == ()
    assert plan.operations["balance"].retry_safe is False
    assert plan.errors == ()


def test_steps_keep_their_order_and_names(rich):
    assert [s.name for s in rich.operations["issue"].steps] == ["create", "fetch"]
    assert [s.name for s in rich.operations["deactivate"].steps] == ["xml", "text", "gql"]


def test_step_where_points_at_its_yaml_line(rich):
    lookup = step(rich, "balance", "lookup")
    line_of_step = RICH.splitlines().index("      - name: lookup") + 1
    assert lookup.where.line == line_of_step
    assert lookup.where.file.endswith("m.yaml")


def test_get_step_path_query_and_headers(rich):
    lookup = step(rich, "balance", "lookup")
    assert lookup.method == "GET" and lookup.timeout == 3 and lookup.parse == "json"
    assert lookup.target.is_path
    assert lookup.target.render(BALANCE_CTX, "https://provider.test/api") == "https://provider.test/api/cards/600649111111"
    assert lookup.query.render(BALANCE_CTX) == {"pin": "1234", "fixed": "1"}
    assert lookup.headers.render(BALANCE_CTX) == {"X-Store": "s-9"}


def test_a_query_value_keeps_null_so_the_engine_can_leave_it_out(rich):
    ctx = {**BALANCE_CTX, "request": {"identifier": {"number": "1", "pin": None}, "metadata": None}}
    assert step(rich, "balance", "lookup").query.render(ctx)["pin"] is None


def test_extract_and_success_are_compiled_jmespath(rich):
    lookup = step(rich, "balance", "lookup")
    answer = {"status": "ok", "balance": {"minor": 1050, "currency": "EUR"}}
    assert {name: expressions.search(expr, answer) for name, expr in lookup.extract} == {"minor": 1050, "currency": "EUR"}
    assert expressions.search(lookup.success, answer) is True
    assert expressions.search(lookup.success, {"status": "refused"}) is False


def test_response_renders_from_step_values(rich):
    response = rich.operations["balance"].response.render({"steps": {"lookup": {"minor": 1050, "currency": "EUR"}}})
    assert response == {"value": Decimal("10.50"), "currency": "EUR"}


def test_json_body_keeps_types_omits_and_encodes(rich):
    create = step(rich, "issue", "create")
    assert create.body.kind == "json" and create.body.content_type == "application/json"
    ctx = {"request": {"amount": {"value": Decimal("10.5"), "currency": "USD"},
                       "customer": {"id": "c1", "email": None, "name": ""}}}
    rendered = create.body.value.render(ctx)
    # one {{ expression }} keeps its type; text around it makes a string; null stays null; omit drops the field
    assert rendered == {"amount": 1050, "label": "card for c1", "email": None, "tags": ["gift", "USD"]}
    assert json.loads(ENCODERS["json"](rendered)) == rendered


def test_json_body_sends_the_optional_field_when_present(rich):
    ctx = {"request": {"amount": {"value": Decimal("1"), "currency": "JPY"},
                       "customer": {"id": "c1", "email": "a@b", "name": "Jay"}}}
    rendered = step(rich, "issue", "create").body.value.render(ctx)
    assert rendered["name"] == "Jay" and rendered["amount"] == 1 and rendered["email"] == "a@b"


def test_step_condition_is_a_compiled_expression(rich):
    condition = step(rich, "issue", "create").condition
    assert condition.render({"request": {"amount": {"value": Decimal("0")}}}) is False
    assert condition.render({"request": {"amount": {"value": Decimal("5")}}}) is True


def test_absolute_url_step(rich):
    fetch = step(rich, "issue", "fetch")
    assert not fetch.target.is_path
    url = fetch.target.render({"steps": {"create": {"id": "a b"}}}, "https://provider.test/api")
    assert url == "https://cards.provider.test/by-id/a%20b"


def test_form_body(rich):
    form = step(rich, "activate", "form")
    assert form.body.kind == "form" and form.body.content_type == "application/x-www-form-urlencoded"
    rendered = form.body.value.render({"request": {"card_number": "6006 1", "amount": {"value": Decimal("2.50")}}})
    assert ENCODERS["form"](rendered) == b"card=6006+1&amount=2.50"


def test_xml_body_escapes_values(rich):
    xml = step(rich, "deactivate", "xml")
    assert xml.method == "PUT" and xml.body.kind == "xml" and xml.body.content_type.startswith("application/xml")
    rendered = xml.body.value.render({"request": {"card_number": "<x>&"}})
    assert rendered == "<Deactivate><Card>&lt;x&gt;&amp;</Card></Deactivate>"


def test_text_body_with_its_own_content_type(rich):
    text = step(rich, "deactivate", "text")
    assert text.method == "DELETE" and text.body.kind == "text" and text.body.content_type == "text/x-note"
    assert text.body.value.render({"request": {"card_number": "42"}}) == "deactivated 42"


def test_graphql_body_renders_variables_not_the_query(rich):
    gql = step(rich, "deactivate", "gql")
    assert gql.body.kind == "graphql" and gql.body.content_type == "application/json"
    rendered = gql.body.value.render({"request": {"card_number": "C1", "pin": None}})
    assert rendered == {"query": "mutation D($id: ID!) { deactivate(id: $id) { at } }",
                        "variables": {"id": "C1"}, "operationName": "D"}


def test_mapping_error_rules_status_specs(rich):
    not_found, refused = rich.errors
    assert not_found.error_code == "card_not_found" and not_found.match is None
    assert [s for s in (200, 400, 404, 500) if s in not_found.statuses] == [404]
    assert [s for s in (400, 404, 499, 500, 503, 504) if s in refused.statuses] == [400, 404, 499, 503]
    assert refused.accepted is True and refused.retry is True
    assert not_found.accepted is False and not_found.retry is False


def test_error_rule_match_details_and_message(rich):
    refused = rich.errors[1]
    body = {"error": {"code": "blocked", "reason": "fraud"}}
    assert expressions.search(refused.match, body) == "blocked"
    assert {k: expressions.search(v, body) for k, v in refused.details} == {"provider_code": "blocked", "reason": "fraud"}
    assert refused.message.render({"response": body}) == "Refused: blocked"


def test_operation_and_step_rules_are_kept_apart(rich):
    issue = rich.operations["issue"]
    assert [r.error_code for r in issue.errors] == ["over_limit"]
    assert all(s.errors == () for s in issue.steps)


def test_unsupported_operation_and_retry_safe_payment_ops(tmp_path):
    plan = compile_ok(tmp_path, HEAD + """\
operations:
  balance: {unsupported: no balance here}
  create_instrument:
    retry_safe: true
    steps: [{name: redeem, request: {path: /redeem, json: {amount: "{{ request.arguments.amount }}"}}, extract: {id: id}}]
    response:
      - {transaction_id: "{{ steps.redeem.id }}", instrument_id: "{{ steps.redeem.id }}", currency: USD, reason: capture}
  capture: {response: []}
  refund: {unsupported: no refunds}
  revoke:
    steps: [{name: back, request: {path: /back}}]
    response: []
""")
    ops = plan.operations
    assert ops["balance"].unsupported == "no balance here" and ops["balance"].steps == ()
    assert ops["create_instrument"].retry_safe is True and ops["revoke"].retry_safe is False
    assert ops["capture"].steps == () and ops["capture"].response.render({}) == []
    assert ops["refund"].unsupported == "no refunds"
    rendered = ops["create_instrument"].response.render({"steps": {"redeem": {"id": "r1"}}})
    assert rendered == [{"transaction_id": "r1", "instrument_id": "r1", "currency": "USD", "reason": "capture"}]


def test_payment_templates_may_read_the_payment_context_names(tmp_path):
    plan, diagnostics = diagnose(tmp_path, HEAD + """\
operations:
  capture:
    steps:
      - name: c
        request:
          path: "/holds/{{ instrument_id | urlsegment }}"
          headers: {Idempotency-Key: "{{ idempotency_key }}"}
          json: {left: "{{ available.capture }}", cur: "{{ available.currency }}", at: "{{ now | rfc3339 }}", ref: "{{ webhook_id }}"}
    response: []
  create_instrument: {unsupported: x}
  refund: {unsupported: x}
  revoke: {unsupported: x}
""")
    assert plan is not None and codes(diagnostics, "error") == []


def test_gift_card_templates_cannot_read_payment_names(tmp_path):
    plan, diagnostics = diagnose(tmp_path, HEAD + """\
operations:
  balance:
    steps: [{name: s, request: {path: "/b/{{ instrument_id }}"}}]
    response: {value: 1, currency: USD}
""")
    assert plan is None
    [d] = [d for d in diagnostics if d.severity == "error"]
    assert d.code == "GW012" and "instrument_id" in d.message and d.keypath == "operations.balance.steps[0].request.path"


def test_a_render_of_a_missing_field_is_a_render_error_naming_the_place(rich):
    with pytest.raises(RenderError) as info:
        step(rich, "issue", "create").body.value.render({"request": {"amount": {"currency": "USD"}, "customer": {"id": "c"}}})
    assert info.value.where.file.endswith("m.yaml") and "operations.issue.steps[0].request.json" in info.value.where.keypath
