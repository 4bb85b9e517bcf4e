"""compile: representative mistakes -> diagnostics with their code, severity, key path and position."""

from __future__ import annotations

import pytest

from gateway.diagnostics import RULES
from tests.unit.support import diagnose

BASE = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: "https://provider.test"}
secrets: [token]
auth: {type: bearer, token: token}
errors:
  - status: 404
    error_code: card_not_found
    message: No such card.
operations:
  balance:
    steps:
      - name: lookup
        request:
          method: GET
          path: "/cards/{{ request.identifier.number | urlsegment }}"
        success: "status == 'ok'"
        extract: {minor: balance.minor, currency: balance.currency}
    response:
      value: "{{ steps.lookup.minor | from_minor(steps.lookup.currency) }}"
      currency: "{{ steps.lookup.currency }}"
  issue:
    steps:
      - name: create
        request:
          path: /cards
          json: {amount: "{{ request.amount.value | to_minor(request.amount.currency) }}"}
        extract: {id: id}
      - name: fetch
        request:
          method: GET
          path: "/cards/{{ steps.create.id | urlsegment }}"
        extract: {number: card.number}
    response:
      identifier: {number: "{{ steps.fetch.number }}"}
  activate: {unsupported: cards are sold active}
  deactivate: {unsupported: not offered}
"""


def line_of(text: str, needle: str) -> int:
    [index] = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return index


def col_of(text: str, needle: str) -> int:
    line = text.splitlines()[line_of(text, needle) - 1]
    return line.index(needle) + 1


def only(diagnostics, severity="error"):
    found = [d for d in diagnostics if d.severity == severity]
    assert len(found) == 1, "\n".join(map(str, diagnostics))
    return found[0]


def test_the_base_mapping_is_clean(tmp_path):
    plan, diagnostics = diagnose(tmp_path, BASE)
    assert plan is not None and diagnostics == []


@pytest.mark.parametrize(("old", "new", "code", "keypath", "words"), [
    ("          method: GET\n          path: \"/cards/{{ request",
     "          methd: GET\n          path: \"/cards/{{ request",
     "GW003", "operations.balance.steps[0].request.methd", ["methd", "did you mean `method`"]),
    ("          method: GET\n          path: \"/cards/{{ request", "          method: FETCH\n          path: \"/cards/{{ request",
     "GW004", "operations.balance.steps[0].request.method", ["FETCH"]),
    ("  - status: 404", "  - status: 4x4", "GW004", "errors[0].status", ["4x4", "not an HTTP status"]),
    ('value: "{{ steps.lookup.minor | from_minor(steps.lookup.currency) }}"',
     'value: "{{ steps.lookup.minor | from_minor(steps.lookup.currency) }"',
     "GW010", "operations.balance.response.value", ["template error"]),
    ("| urlsegment }}\"\n        success", "| urlsegmnt }}\"\n        success",
     "GW011", "operations.balance.steps[0].request.path", ["urlsegmnt"]),
    ("{{ request.identifier.number", "{{ requests.identifier.number",
     "GW012", "operations.balance.steps[0].request.path", ["requests", "did you mean `request`"]),
    ("{{ request.identifier.number", "{{ request.identifier.numbr",
     "GW013", "operations.balance.steps[0].request.path", ["request.identifier.numbr"]),
    ('identifier: {number: "{{ steps.fetch.number }}"}', 'identifier: {number: "{{ steps.fetch.numbr }}"}',
     "GW014", "operations.issue.response.identifier.number", ["numbr"]),
    ('base_url: "{{ vars.base_url }}"', 'base_url: "{{ vars.base_ur }}"', "GW015", "base_url", ["base_ur"]),
    ("success: \"status == 'ok'\"", "success: \"status == \"", "GW020", "operations.balance.steps[0].success",
     ["JMESPath syntax error"]),
    ("extract: {number: card.number}", "extract: {number: lenght(card)}", "GW021",
     "operations.issue.steps[1].extract.number", ["lenght()", "did you mean `length`"]),
    ("  activate: {unsupported", "  activat: {unsupported", "GW030", "operations.activat", ["did you mean `activate`"]),
    ("          path: /cards\n", "          path: /cards\n          url: https://elsewhere.test/cards\n", "GW031",
     "operations.issue.steps[0].request", ["exactly one of `path`", "`url`"]),
    ("          path: /cards\n", "          path: cards\n", "GW031", "operations.issue.steps[0].request.path",
     ["must start with `/`"]),
    ("          json: {amount:", "          form: {x: y}\n          json: {amount:", "GW031",
     "operations.issue.steps[0].request", ["several bodies"]),
    ("extract: {id: id}", "extract: {id: id, response: x}", "GW031", "operations.issue.steps[0].extract.response",
     ["reserved"]),
    ('      currency: "{{ steps.lookup.currency }}"\n', "", "GW032", "operations.balance.response", ["currency"]),
    ("  deactivate: {unsupported: not offered}", "  deactivate: {unsupported: x, steps: [{name: a, request: {path: /a}}]}",
     "GW033", "operations.deactivate", ["keep one"]),
    ("  deactivate: {unsupported: not offered}", "  deactivate: {}", "GW033", "operations.deactivate", ["no `steps`"]),
    ("  - status: 404\n", "  - error_code: x\n    message: y\n  - status: 404\n", "GW035", "errors[0]",
     ["needs `status`, `match` or both"]),
    ("auth: {type: bearer, token: token}", "auth: {type: bearer, token: tokn}", "GW042", "auth.token", ["tokn"]),
])
def test_a_mistake_is_one_error_at_its_key(tmp_path, old, new, code, keypath, words):
    assert old in BASE
    plan, diagnostics = diagnose(tmp_path, BASE.replace(old, new, 1))
    assert plan is None  # serve would refuse to start
    d = only(diagnostics)
    assert (d.code, d.keypath) == (code, keypath), str(d)
    assert d.name == RULES[code].name
    for word in words:
        assert word in d.message, d.message
    assert d.file.endswith("m.yaml") and d.line >= 1 and d.col >= 1


def test_yaml_syntax_error_is_reported_at_its_line(tmp_path):
    text = BASE.replace("  activate: {unsupported: cards are sold active}", "  activate: {unsupported: [oops}")
    plan, diagnostics = diagnose(tmp_path, text)
    d = only(diagnostics)
    assert plan is None and d.code == "GW001"
    assert d.line == line_of(text, "oops")


def test_duplicate_key_is_reported_at_the_second_one(tmp_path):
    text = BASE.replace("  deactivate: {unsupported: not offered}", "  deactivate: {unsupported: a}\n  deactivate: {unsupported: b}")
    plan, diagnostics = diagnose(tmp_path, text)
    d = only(diagnostics)
    assert plan is None and d.code == "GW002"
    assert d.line == line_of(text, "unsupported: b}") and "deactivate" in d.message


def test_a_missing_required_field_names_it(tmp_path):
    plan, diagnostics = diagnose(tmp_path, BASE.replace('base_url: "{{ vars.base_url }}"\n', ""))
    d = only(diagnostics)
    assert plan is None and d.code == "GW005" and "base_url" in d.message


def test_unknown_filter_position_is_the_template_line(tmp_path):
    text = BASE.replace("| urlsegment }}\"\n        success", "| urlsegmnt }}\"\n        success")
    d = only(diagnose(tmp_path, text)[1])
    line = text.splitlines()[line_of(text, "urlsegmnt") - 1]
    assert (d.line, d.col) == (line_of(text, "urlsegmnt"), line.index('"/cards/{{') + 2)  # the template, inside its quotes


def test_a_step_name_used_twice(tmp_path):
    plan, diagnostics = diagnose(tmp_path, BASE.replace("      - name: fetch", "      - name: create"))
    [d] = [d for d in diagnostics if d.code == "GW031"]
    assert plan is None and "`create` is used twice" in d.message and d.keypath == "operations.issue.steps[1].name"
    assert d.line == line_of(BASE, "- name: fetch")


def test_jmespath_error_points_at_the_character(tmp_path):
    text = BASE.replace("extract: {number: card.number}", "extract: {number: card.number ||}")
    d = only(diagnose(tmp_path, text)[1])
    assert d.code == "GW020" and "card.number ||" in d.message
    assert d.line == line_of(text, "card.number ||")
    assert d.col > col_of(text, "card.number ||")  # past the start of the expression, where it breaks


def test_template_error_in_a_block_scalar_points_at_its_own_line(tmp_path):
    text = BASE.replace(
        "          json: {amount: \"{{ request.amount.value | to_minor(request.amount.currency) }}\"}",
        "          text: |\n            first line\n            second {{ request.amount.vlue }}\n")
    d = only(diagnose(tmp_path, text)[1])
    assert d.code == "GW013" and d.line == line_of(text, "request.amount.vlue")


def test_a_step_may_not_read_a_later_step(tmp_path):
    text = BASE.replace('json: {amount: "{{ request.amount.value', 'json: {n: "{{ steps.fetch.number }}", amount: "{{ request.amount.value')
    d = only(diagnose(tmp_path, text)[1])
    assert d.code == "GW014" and "fetch" in d.message and d.keypath == "operations.issue.steps[0].request.json.n"


def test_omit_inside_text_is_refused(tmp_path):
    text = BASE.replace('json: {amount: "{{ request.amount.value | to_minor(request.amount.currency) }}"}',
                        'json: {amount: "x{{ omit }}"}')
    d = only(diagnose(tmp_path, text)[1])
    assert d.code == "GW012" and "omit" in d.message and d.keypath == "operations.issue.steps[0].request.json.amount"


def test_payment_response_must_be_a_list_and_codes_from_the_payment_contract(tmp_path):
    text = BASE + """\
  create_instrument:
    errors:
      - status: 402
        error_code: insufficient_funds
        message: Not enough.
    steps: [{name: hold, request: {path: /holds}, extract: {id: id}}]
    response: {transaction_id: "{{ steps.hold.id }}"}
  capture: {unsupported: x}
  refund: {unsupported: x}
  revoke: {unsupported: x}
"""
    plan, diagnostics = diagnose(tmp_path, text)
    errors = sorted((d.code, d.keypath) for d in diagnostics if d.severity == "error")
    assert plan is None
    assert errors == [("GW032", "operations.create_instrument.response"),
                      ("GW039", "operations.create_instrument.errors[0].error_code")]
    [gw039] = [d for d in diagnostics if d.code == "GW039"]
    assert "instrument_error" in gw039.message or "it has" in gw039.message


def test_warnings_do_not_stop_the_plan(tmp_path):
    text = (BASE
            .replace("extract: {id: id}", "extract: {id: id, spare: x}")                      # GW036
            .replace("  deactivate: {unsupported: not offered}\n", "")                          # GW037
            .replace("      - name: fetch", "      - name: fetch\n        if: false")            # GW038
            .replace("          method: GET\n          path: \"/cards/{{ request",
                     "          method: GET\n          headers: {X-Api-Key: abcdef0123456789}\n          path: \"/cards/{{ request")  # GW050
            .replace("  - status: 404\n", "  - status: 4xx\n    error_code: any\n    message: m\n  - status: 404\n"))  # GW034
    plan, diagnostics = diagnose(tmp_path, text)
    assert plan is not None
    assert all(d.severity == "warning" for d in diagnostics)
    assert sorted(d.code for d in diagnostics) == ["GW034", "GW036", "GW037", "GW038", "GW050"]
    by_code = {d.code: d for d in diagnostics}
    assert by_code["GW036"].keypath == "operations.issue.steps[0].extract.spare"
    assert by_code["GW037"].message.startswith("operation `deactivate`")
    assert by_code["GW038"].keypath == "operations.issue.steps[1].if"
    assert by_code["GW050"].keypath == "operations.balance.steps[0].request.headers.X-Api-Key"
    assert by_code["GW034"].keypath == "errors[1]" and f"line {line_of(text, '- status: 4xx')}" in by_code["GW034"].message


def test_several_mistakes_are_all_reported_in_one_pass(tmp_path):
    text = (BASE.replace("{{ request.identifier.number", "{{ request.identifier.numbr")
                .replace("extract: {number: card.number}", "extract: {number: lenght(card)}"))
    plan, diagnostics = diagnose(tmp_path, text)
    assert plan is None
    assert sorted(d.code for d in diagnostics if d.severity == "error") == ["GW013", "GW021"]
    lines = sorted(d.line for d in diagnostics)
    assert lines == sorted([line_of(text, "numbr"), line_of(text, "lenght(card)")])


def test_a_diagnostic_prints_as_file_line_col_code(tmp_path):
    d = only(diagnose(tmp_path, BASE.replace("auth: {type: bearer, token: token}", "auth: {type: bearer, token: tokn}"))[1])
    assert str(d) == f"{d.file}:{d.line}:{d.col}: GW042 {d.message} (at auth.token)"
    assert d.line == line_of(BASE, "auth: {type: bearer")
