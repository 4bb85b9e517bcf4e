"""Integrator tooling: `gateway test`, `gateway render`, `gateway schema`, `gateway new`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from gateway.tools.schema import text as schema_text

from .conftest import ROOT, SANDBOX_KEY_FILE, _leaks, write_config

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def gateway(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(GATEWAY + list(args), cwd=cwd, capture_output=True, text=True, input=stdin, timeout=120)


# --- gateway test -----------------------------------------------------------------------------


def test_the_shipped_mapping_tests_pass():
    result = gateway("test", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = sum(len(yaml.safe_load(p.read_text())["cases"]) for p in (ROOT / "mappings").glob("*.test.yaml"))
    assert result.stdout.splitlines()[-1].startswith(f"{cases} passed, 0 failed in ")
    # Every shipped mapping has its cases: all four gift card operations, and every payment
    # operation it maps.
    for mapping in _shipped_mappings():
        spec = yaml.safe_load(mapping.with_name(mapping.stem + ".test.yaml").read_text())
        covered = {c["operation"] for c in spec["cases"]}
        operations = yaml.safe_load(mapping.read_text())["operations"]
        paying = {name for name in ("create_instrument", "capture", "refund", "revoke")
                  if name in operations and "unsupported" not in operations[name]}
        assert {"balance", "issue", "activate", "deactivate"} | paying <= covered, mapping.name


WRONG = f"""\
mapping: {ROOT / 'mappings' / 'sandbox.yaml'}
vars: {{base_url: https://sandbox.test}}
secrets: {{api_key: test-api-key}}
cases:
  - name: passes
    operation: balance
    request: {{identifier: {{number: "6006491111111111", pin: "480163"}}}}
    provider:
      lookup: {{body: {{result: ok, card: {{balance: {{amount_minor: 5000, currency: USD}}}}}}}}
    expect: {{status: 200, body: {{value: 50, currency: USD}}}}
  - name: expects the wrong amount
    operation: balance
    request: {{identifier: {{number: "6006491111111111", pin: "480163"}}}}
    provider:
      lookup: {{body: {{result: ok, card: {{balance: {{amount_minor: 5000, currency: USD}}}}}}}}
    expect: {{status: 200, body: {{value: 50.01, currency: USD}}}}
  - name: expects another card number in the request
    operation: balance
    request: {{identifier: {{number: "6006491111111111", pin: "480163"}}}}
    provider:
      lookup: {{body: {{result: ok, card: {{balance: {{amount_minor: 5000, currency: USD}}}}}}}}
    requests:
      lookup: {{json: {{number: "6006492222222222", pin: "480163"}}}}
    expect: {{status: 200}}
  - name: forgets to answer a step
    operation: balance
    request: {{identifier: {{number: "6006491111111111", pin: "480163"}}}}
    expect: {{status: 200}}
"""


def test_a_failing_case_shows_where_and_the_first_difference(tmp_path):
    (tmp_path / "wrong.test.yaml").write_text(WRONG)
    result = gateway("test", "wrong.test.yaml", cwd=tmp_path)
    assert result.returncode == 1
    # Card numbers show their last 4 and a fingerprint (equal values, equal fingerprints, in one run).
    lines = [re.sub(r"fingerprint [0-9a-f]{8}\)", "fingerprint …)", line) for line in result.stdout.splitlines()]
    assert lines[:-1] == [
        "wrong.test.yaml:5: passes PASSED",
        "wrong.test.yaml:11: expects the wrong amount FAILED",
        "    response, body at $.value:",
        "      expected: 50.01",
        "      actual:   50.00",
        '      (whole response: {"value":50.00,"currency":"USD"})',
        "wrong.test.yaml:17: expects another card number in the request FAILED",
        "    request of step `lookup`, json body at $.number:",
        '      expected: "****2222" (16 characters, fingerprint …)',
        '      actual:   "****1111" (16 characters, fingerprint …)',
        "      first difference at character 7",
        "wrong.test.yaml:25: forgets to answer a step FAILED",
        "    step `lookup` sent a request, but the case gives no `provider.lookup` answer",
    ]
    assert lines[-1].startswith("1 passed, 3 failed in ")
    assert "480163" not in result.stdout


def test_exit_codes_follow_pytest(tmp_path):
    assert gateway("test", "nothing-here", cwd=tmp_path).returncode == 4
    (tmp_path / "empty").mkdir()
    assert gateway("test", "empty", cwd=tmp_path).returncode == 5
    (tmp_path / "broken.test.yaml").write_text(WRONG.replace("    operation: balance\n", "    operaton: balance\n", 1))
    broken = gateway("test", "broken.test.yaml", cwd=tmp_path)
    assert broken.returncode == 2
    assert "ERROR broken.test.yaml:6:5: GW003 unknown field `operaton`; did you mean `operation`?" in broken.stdout


# --- gateway render ---------------------------------------------------------------------------


@pytest.fixture
def config(sandbox, tmp_path):
    return write_config(tmp_path, {"sandbox": {
        "mapping": str(ROOT / "mappings" / "sandbox.yaml"), "vars": {"base_url": sandbox.url},
        "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none"}},
        idempotency={"key_file": "k.key"})


BALANCE = json.dumps({"identifier": {"number": "6006 4911 1111 1111", "pin": "480163"}})


def test_render_dry_run_masks_and_sends_nothing(config, sandbox, tmp_path):
    result = gateway("render", "sandbox", "balance", "-", "--config", str(config), cwd=tmp_path, stdin=BALANCE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "# sandbox balance (dry run: nothing is sent); card numbers, PINs and secrets are masked\n"
        "\n"
        "step lookup\n"
        f"  POST {sandbox.url}/v1/cards/lookup\n"
        "  Accept: application/json\n"
        "  Content-Type: application/json\n"
        "  X-Api-Key: ***\n"
        '  {"number":"****1111","pin":"***"}\n'
    )
    assert sandbox.calls() == []


def test_render_send_prints_the_trace(config, sandbox, tmp_path):
    wrong_pin = json.dumps({"identifier": {"number": "6006491111111111", "pin": "111111"}})
    result = gateway("render", "sandbox", "balance", "-", "--send", "--config", str(config), cwd=tmp_path, stdin=wrong_pin)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "  -> HTTP 200\n" in out
    assert "error rule " in out and "matched -> invalid_pin" in out
    assert out.endswith('NewStore gets HTTP 400\n  {"error_code":"invalid_pin","message":"The PIN is wrong.",'
                        '"request_accepted":false,"details":{"step":"lookup","upstream_status":200}}\n')
    ok = gateway("render", "sandbox", "balance", "-", "--send", "--config", str(config), cwd=tmp_path, stdin=BALANCE)
    assert '  extracted: minor=5000, currency="USD"\n' in ok.stdout
    assert ok.stdout.endswith('NewStore gets HTTP 200\n  {"value":50.00,"currency":"USD"}\n')
    key = SANDBOX_KEY_FILE.read_text().strip()
    assert not _leaks(out + ok.stdout, {"6006491111111111", "480163", "111111", key})
    assert len(sandbox.calls()) == 2


def test_render_defaults_to_newstores_example_and_names_unknown_providers(config, tmp_path):
    example = gateway("render", "sandbox", "issue", "--config", str(config), cwd=tmp_path)
    assert '"amount_minor":10000' in example.stdout
    unknown = gateway("render", "nope", "issue", "--config", str(config), cwd=tmp_path)
    assert unknown.returncode == 2 and "no provider `nope`" in unknown.stderr


# --- gateway schema ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mapping", "gateway"])
def test_committed_schemas_are_the_generated_ones(kind):
    assert (ROOT / "docs" / "schema" / f"{kind}.schema.json").read_text() == schema_text(kind)
    assert gateway("schema", kind, cwd=ROOT).stdout == schema_text(kind)


def _shipped_mappings() -> list[Path]:
    return [p for p in sorted((ROOT / "mappings").glob("*.yaml")) if not p.name.endswith(".test.yaml")]


@pytest.mark.parametrize("path", _shipped_mappings(), ids=lambda p: p.name)
def test_the_schema_accepts_every_shipped_mapping(path):
    jsonschema.validate(yaml.safe_load(path.read_text()), json.loads(schema_text("mapping")))
    assert path.read_text().startswith("# yaml-language-server: $schema=../docs/schema/mapping.schema.json\n")


def test_the_schema_accepts_the_shipped_gateway_yaml_and_rejects_unknown_fields():
    gateway_schema = json.loads(schema_text("gateway"))
    jsonschema.validate(yaml.safe_load((ROOT / "gateway.yaml").read_text()), gateway_schema)
    mapping = yaml.safe_load((ROOT / "mappings" / "sandbox.yaml").read_text())
    mapping["operations"]["balance"]["steps"][0]["extrct"] = {}
    with pytest.raises(jsonschema.ValidationError, match="extrct"):
        jsonschema.validate(mapping, json.loads(schema_text("mapping")))


def test_the_schema_knows_every_operation_of_both_contracts():
    mapping_schema = json.loads(schema_text("mapping"))
    mapping = yaml.safe_load((ROOT / "mappings" / "sandbox.yaml").read_text())
    assert {"create_instrument", "capture", "refund", "revoke"} <= set(mapping["operations"])
    jsonschema.validate(mapping, mapping_schema)
    mapping["operations"]["settle"] = {"unsupported": "no such operation"}
    with pytest.raises(jsonschema.ValidationError, match="settle"):
        jsonschema.validate(mapping, mapping_schema)


# --- gateway new ------------------------------------------------------------------------------


def test_new_scaffolds_a_mapping_that_lints_clean_and_whose_tests_run(tmp_path):
    created = gateway("new", "acme", cwd=tmp_path)
    assert created.stdout == "wrote mappings/acme.yaml\nwrote mappings/acme.test.yaml\n"
    assert gateway("lint", "mappings/acme.yaml", cwd=tmp_path).stdout == "no problems found\n"
    tested = gateway("test", cwd=tmp_path)
    assert tested.returncode == 0 and tested.stdout.splitlines()[-1].startswith("8 passed, 0 failed")
    again = gateway("new", "acme", cwd=tmp_path)
    assert again.returncode == 2 and "already exists; not overwriting it" in again.stderr
    assert gateway("new", "Bad Name", cwd=tmp_path).returncode == 2


def test_unquoted_yaml_timestamps_in_cases_mean_their_text(tmp_path):
    (tmp_path / "dates.test.yaml").write_text(f"""\
mapping: {ROOT / 'mappings' / 'sandbox.yaml'}
vars: {{base_url: https://sandbox.test}}
secrets: {{api_key: k}}
cases:
  - name: unquoted timestamps
    operation: deactivate
    request: {{card_number: "6006491111111111", metadata: {{since: 2026-01-01}}}}
    provider:
      deactivate: {{body: {{result: ok, card: {{deactivated_at: 2026-11-22T10:11:17Z}}}}}}
    expect: {{status: 200, body: {{deactivated_at: 2026-11-22T10:11:17Z}}}}
""")
    result = gateway("test", "dates.test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_send_answers_a_deadline_as_the_webhook_would(sandbox, tmp_path):
    """`render --send` runs the webhook's own path: past the provider's deadline it prints the
    spec's Error body a webhook gets (504 gateway_deadline_exceeded, naming the step), not a
    body of its own."""
    config = write_config(tmp_path, {"sandbox": {
        "mapping": str(ROOT / "mappings" / "sandbox.yaml"), "vars": {"base_url": sandbox.url},
        "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none", "deadline": 0.5}},
        idempotency={"key_file": "k.key"})
    sandbox.fault("delay", seconds=1.5)
    result = gateway("render", "sandbox", "balance", "-", "--send", "--config", str(config), cwd=tmp_path, stdin=BALANCE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(
        'NewStore gets HTTP 504\n  {"error_code":"gateway_deadline_exceeded","message":"the webhook did not finish '
        'within its 0.5s deadline (in step `lookup`); the outcome is unknown","request_accepted":true,'
        '"details":{"step":"lookup"}}\n'), result.stdout
