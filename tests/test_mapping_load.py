"""A broken mapping or gateway.yaml does not load, and says where (file:line:col) and why."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest

from gateway.compile.gateway_file import load, load_mapping
from gateway.config import reader

GOOD = """\
base_url: https://provider.example
secrets: [token]
auth: {type: bearer, token: token}
operations:
  balance:
    steps:
      - name: lookup
        request:
          path: /cards/{{ request.identifier.number | urlsegment }}
          method: GET
        extract: {minor: balance.minor, currency: balance.currency}
    response:
      value: "{{ steps.lookup.minor | from_minor(steps.lookup.currency) }}"
      currency: "{{ steps.lookup.currency }}"
  issue: {unsupported: the provider cannot create cards}
  activate: {unsupported: cards are sold active}
  deactivate: {unsupported: not offered}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # file names in messages are relative to the working directory


IDEM = "idempotency: {key_file: state/idempotency.key}\n"  # says which key: no GW047 warning


def messages(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text))
    plan, diagnostics = load_mapping(path)
    assert plan is None or not [d for d in diagnostics if d.severity == "error"]
    return [str(d) for d in diagnostics]


def test_the_good_mapping_loads_clean(tmp_path):
    assert messages(tmp_path, GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('currency: "{{ steps.lookup.currency }}"', 'currency: "{{ steps.lookup.currency }"',
         "m.yaml:14:18: GW010 template error: unexpected '}' (at operations.balance.response.currency)"),
        ("| urlsegment }}", "| urlsegmnt }}",
         "m.yaml:9:17: GW011 template error: No filter named 'urlsegmnt'; available filters: card_number, derive, "
         "fit_key, from_minor, max_exponent, rfc3339, sha256, to_decimal, to_decimal_string, to_minor, urlsegment and Jinja's "
         "built-ins (at operations.balance.steps[0].request.path)"),
        ("minor: balance.minor,", "minor: balance.minor ||,",
         "m.yaml:11:42: GW020 JMESPath syntax error at character 17 of `balance.minor ||`: Incomplete expression (at operations.balance.steps[0].extract.minor)"),
        ("minor: balance.minor,", "minor: lenght(balance),",
         "m.yaml:11:26: GW021 JMESPath function `lenght()` does not exist; did you mean `length`? (at operations.balance.steps[0].extract.minor)"),
        ("          method: GET", "          methd: GET",
         "m.yaml:10:11: GW003 unknown field `methd`; did you mean `method`? (at operations.balance.steps[0].request.methd)"),
        ("          method: GET", "          method: FETCH",
         "m.yaml:10:19: GW004 invalid value 'FETCH'; allowed: 'DELETE', 'GET', 'PATCH', 'POST', 'PUT' (at operations.balance.steps[0].request.method)"),
        ("  issue: {unsupported", "  isue: {unsupported",
         "m.yaml:15:3: GW030 unknown operation `isue`; did you mean `issue`? (at operations.isue)"),
        ("value: \"{{ steps", "vaule: \"{{ steps",
         "m.yaml:13:14: GW032 NewStore's `balance` response has no field `vaule`; did you mean `value`? (at operations.balance.response.vaule)"),
        ("auth: {type: bearer, token: token}", "auth: {type: bearer, token: tokn}",
         "m.yaml:3:29: GW042 auth uses secret `tokn`, which the mapping does not declare; add it to `secrets:` (at auth.token)"),
        ("{{ request.identifier.number | urlsegment }}", "{{ requests.identifier.number | urlsegment }}",
         "m.yaml:9:17: GW012 template reads `requests`, which does not exist; did you mean `request`? (at operations.balance.steps[0].request.path)"),
        ('currency: "{{ steps.lookup.currency }}"', 'currency: "{{ steps.lookup.currency, }}"',
         "m.yaml:14:18: GW010 template error: chunk after expression (at operations.balance.response.currency)"),
        ("operations:\n", "operations:\n  balance: {unsupported: x}\n",
         "m.yaml:6:3: GW002 duplicate key `balance` (first defined on line 5); YAML would silently keep only the last one (at operations.balance)"),
    ],
)
def test_each_mistake_is_reported_at_its_line(tmp_path, old, new, expected):
    assert old in GOOD
    found = messages(tmp_path, GOOD.replace(old, new, 1))
    assert expected in found, "\n".join(found)


def test_template_error_inside_a_block_scalar_points_at_its_line(tmp_path):
    text = GOOD.replace(
        "          method: GET\n",
        "          method: POST\n          text: |\n            <Balance>\n              <Card>{{ request.identifier.number</Card>\n            </Balance>\n",
    )
    found = messages(tmp_path, text)
    assert any(f.startswith("m.yaml:13:") and "GW010" in f for f in found), found


def test_yaml_syntax_error(tmp_path):
    found = messages(tmp_path, "base_url: [unclosed\noperations: {}\n")
    assert found == ["m.yaml:2:11: GW001 YAML syntax error: while parsing a flow sequence did not find expected ',' or ']'"]


def test_gateway_yaml_errors_name_the_file_and_key(tmp_path, monkeypatch):
    (tmp_path / "m.yaml").write_text(GOOD)
    (tmp_path / "gateway.yaml").write_text(textwrap.dedent("""\
        providers:
          acme:
            mapping: m.yaml
            secrets: {token: {env: ACME_TOKEN_THAT_IS_NOT_SET}}
            inbound: {key: {env: ACME_INBOUND_NOT_SET}}
          Bad Name:
            mapping: m.yaml
            inbound: none
          other:
            mapping: missing.yaml
            inbound: none
    """) + IDEM)
    monkeypatch.chdir(tmp_path)
    plan, diagnostics = load("gateway.yaml")
    assert plan is None
    assert [str(d) for d in diagnostics] == [
        "gateway.yaml:4:22: GW040 secret `token` of `acme`: environment variable `ACME_TOKEN_THAT_IS_NOT_SET` is not set (at providers.acme.secrets.token)",
        "gateway.yaml:5:20: GW040 inbound key of `acme`: environment variable `ACME_INBOUND_NOT_SET` is not set (at providers.acme.inbound.key)",
        "gateway.yaml:6:3: GW043 provider name `Bad Name` must be lowercase letters, digits, `-` or `_` (it is the first segment of NewStore's URL) (at providers.Bad Name)",
        "gateway.yaml:10:14: GW006 cannot read `missing.yaml`: No such file or directory (at providers.other.mapping)",
    ]


def test_lint_mode_downgrades_unset_secrets_to_warnings(tmp_path, monkeypatch):
    (tmp_path / "m.yaml").write_text(GOOD)
    (tmp_path / "gateway.yaml").write_text(IDEM + "providers:\n  acme:\n    mapping: m.yaml\n    secrets: {token: {env: NOT_SET_ANYWHERE}}\n    inbound: none\n")
    monkeypatch.chdir(tmp_path)
    plan, diagnostics = load("gateway.yaml", require_secrets=False)
    assert plan is not None
    assert [d.severity for d in diagnostics] == ["warning"]


def test_provider_vars_and_secrets_must_match_the_mapping(tmp_path, monkeypatch):
    (tmp_path / "m.yaml").write_text(GOOD.replace("secrets: [token]", "secrets: [token]\nvars: {shop: null, region: eu}"))
    (tmp_path / "gateway.yaml").write_text(textwrap.dedent("""\
        providers:
          acme:
            mapping: m.yaml
            vars: {regoin: us}
            inbound: none
    """) + IDEM)
    monkeypatch.chdir(tmp_path)
    plan, diagnostics = load("gateway.yaml")
    assert plan is None
    assert [str(d) for d in diagnostics] == [
        "gateway.yaml:4:12: GW041 `m.yaml` declares no variable `regoin`; did you mean `region`? (at providers.acme.vars.regoin)",
        "gateway.yaml:4:11: GW041 variable `shop` has no default in `m.yaml`; set providers.acme.vars.shop (at providers.acme.vars)",
        "gateway.yaml:2:3: GW042 `m.yaml` needs secret `token`; add providers.acme.secrets.token: {env: NAME} (at providers.acme)",
    ]


def test_the_shipped_configuration_loads_clean():
    root = Path(__file__).resolve().parent.parent
    plan, diagnostics = load(root / "gateway.yaml")
    assert plan is not None
    assert diagnostics == []


def test_method_calls_on_steps_and_vars_are_reads_of_the_object(tmp_path):
    text = GOOD.replace("secrets: [token]", "secrets: [token]\nvars: {region: eu}").replace(
        'currency: "{{ steps.lookup.currency }}"', 'currency: "{{ steps.lookup.get(\'currency\') or vars.get(\'region\') }}"')
    assert messages(tmp_path, text) == []


def test_an_operation_rule_cannot_read_steps_it_may_fire_before(tmp_path):
    text = GOOD.replace("    response:\n      value:", "    errors:\n      - {status: 404, error_code: x, message: \"{{ steps.lookup.minor }}\"}\n    response:\n      value:", 1)
    found = messages(tmp_path, text)
    assert any("GW014 `steps.lookup` runs after this template" in f for f in found), found


def test_an_operation_rule_shadowed_in_one_step_only_is_not_reported(tmp_path):
    text = GOOD.replace(
        "        extract: {minor: balance.minor, currency: balance.currency}\n",
        "        extract: {minor: balance.minor, currency: balance.currency}\n"
        "        errors: [{status: 404, error_code: a, message: a}]\n"
        "      - name: again\n        request: {path: /again}\n",
    ).replace("    response:\n      value:", "    errors:\n      - {status: 404, error_code: b, message: b}\n    response:\n      value:", 1)
    assert [f for f in messages(tmp_path, text) if "GW034" in f] == []


def test_jmespath_positions_count_escapes_in_quoted_scalars(tmp_path):
    text = GOOD.replace("        extract: {minor: balance.minor, currency: balance.currency}\n",
                        "        extract: {minor: balance.minor, currency: balance.currency}\n"
                        "        success: 'result == ''ok'' && card.['\n")
    found = [f for f in messages(tmp_path, text) if "GW020" in f]
    assert found and found[0].startswith("m.yaml:12:45: GW020")


# --- the reader: every problem of a file in one pass, each where it is written ------------------

SEVERAL = """\
base_url: https://provider.example
timeout: 0
auth: {type: barer, token: token}
operations:
  balance:
    steps:
      - {name: first, request: {methd: GET, path: /a}}
      - {name: 2nd, request: {path: /b}, if: 5}
      - {request: {path: /c}}
      - {name: last, request: {path: /d, method: FETCH}, extract: {bad-key: x}}
  issue: {unsupported: x, retry_safe: yes please}
  activate: {unsupported: x}
  deactivate: {unsupported: x}
"""


@pytest.mark.unit
def test_every_problem_of_a_file_is_reported_in_one_pass(tmp_path):
    found = [f for f in messages(tmp_path, SEVERAL) if " GW00" in f]
    assert found == [
        "m.yaml:2:10: GW004 expected `float` > 0, got 0 (at timeout)",
        "m.yaml:3:14: GW004 invalid `type` 'barer'; did you mean 'bearer'? (at auth.type)",
        "m.yaml:7:33: GW003 unknown field `methd`; did you mean `method`? (at operations.balance.steps[0].request.methd)",
        "m.yaml:8:16: GW004 '2nd' does not match regex '^[A-Za-z_][A-Za-z0-9_]*$' (at operations.balance.steps[1].name)",
        "m.yaml:8:46: GW004 expected `str | bool | null`, got `int` (at operations.balance.steps[1].if)",
        # The steps after one with a problem keep their own index and position.
        "m.yaml:9:9: GW005 missing required field `name` (at operations.balance.steps[2])",
        "m.yaml:10:50: GW004 invalid value 'FETCH'; allowed: 'DELETE', 'GET', 'PATCH', 'POST', 'PUT' (at operations.balance.steps[3].request.method)",
        "m.yaml:10:68: GW004 key 'bad-key' does not match regex '^[A-Za-z_][A-Za-z0-9_]*$' (at operations.balance.steps[3].extract.bad-key)",
        "m.yaml:11:39: GW004 expected `bool`, got `str` (at operations.issue.retry_safe)",
    ]


@pytest.mark.unit
def test_a_required_field_with_a_bad_value_is_reported_once(tmp_path):
    # Not also "missing required field `request`", nor the step's other missing fields.
    text = GOOD.replace("        request:\n          path: /cards/{{ request.identifier.number | urlsegment }}\n          method: GET\n",
                        "        request: /cards\n")
    found = [f for f in messages(tmp_path, text) if "GW00" in f]
    assert found == ["m.yaml:8:18: GW004 expected `object`, got `str` (at operations.balance.steps[0].request)"]


@pytest.mark.unit
def test_all_missing_fields_of_an_object_are_named_together(tmp_path):
    found = messages(tmp_path, GOOD.replace("auth: {type: bearer, token: token}", "auth: {type: oauth2}"))
    assert found[0] == "m.yaml:3:7: GW005 missing required fields `token_url`, `client_id` and `client_secret` (at auth)"


@pytest.mark.unit
@pytest.mark.parametrize(("value", "expected"), [
    ("yes", "expected `str`, got `bool` (YAML reads unquoted yes, no, on, off, true and false as booleans: quote it)"),
    ("2026-01-01", "expected `str`, got `date` (YAML reads an unquoted date as a date: quote it)"),
    ("12", "expected `str`, got `int`"),
])
def test_yaml_surprises_are_explained(tmp_path, value, expected):
    found = messages(tmp_path, GOOD.replace("token: token}", f"token: {value}}}"))
    assert found[0] == f"m.yaml:3:29: GW004 {expected} (at auth.token)"


class _Checked(msgspec.Struct, forbid_unknown_fields=True):
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("`low` is above `high`")


@pytest.mark.unit
def test_a_refusal_the_walk_cannot_foresee_is_reported_in_msgspecs_words(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("low: 5\nhigh: 1\n")
    diagnostics: list = []
    assert reader.convert(reader.read(path, diagnostics), _Checked) is None
    assert [str(d) for d in diagnostics] == ["c.yaml:1:1: GW004 `low` is above `high` (at (top level))"]
