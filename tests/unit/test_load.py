"""load: gateway.yaml + mappings -> GatewayPlan; binding each tenant's vars, secrets and inbound key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.compile.gateway_file import load
from tests.unit.support import HEAD, write

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
  issue: {unsupported: not mapped}
  activate: {unsupported: not mapped}
  deactivate: {unsupported: not mapped}
"""
IDEM = "idempotency: {key_file: state/idempotency.key}\n"


def gateway(tmp_path: Path, providers: str, extra: str = IDEM) -> Path:
    write(tmp_path, MAPPING, "acme.yaml")
    (tmp_path / "token.txt").write_text("file-token\n")
    return write(tmp_path, "providers:\n" + textwrap.indent(textwrap.dedent(providers), "  ") + extra, "gateway.yaml")


ACME = """\
acme:
  mapping: acme.yaml
  secrets: {token: {file: token.txt}}
  inbound: none
"""


def test_a_provider_binds_mapping_vars_secrets_and_defaults(tmp_path):
    plan, diagnostics = load(gateway(tmp_path, ACME))
    assert diagnostics == [] and plan is not None
    acme = plan.providers["acme"]
    assert acme.name == "acme" and acme.inbound is None
    assert acme.base_url == "https://provider.test/api"  # the mapping's default var, rendered once
    assert dict(acme.vars) == {"base_url": "https://provider.test/api", "region": "eu"}
    assert acme.auth.static_headers["Authorization"].reveal() == "Bearer file-token"  # the file's value, stripped
    assert acme.deadline == 15 and acme.max_connections == 100
    assert set(acme.mapping.operations) == {"balance", "issue", "activate", "deactivate"}
    assert plan.max_body_bytes == 65536
    assert plan.idempotency is not None and plan.idempotency.lease == acme.deadline + 5


def test_two_tenants_share_one_compiled_mapping_with_their_own_vars(tmp_path):
    plan, _ = load(gateway(tmp_path, ACME + """\
acme-us:
  mapping: acme.yaml
  vars: {base_url: "https://us.provider.test/", region: us}
  secrets: {token: {file: token.txt}}
  inbound: none
  deadline: 4
"""))
    us, eu = plan.providers["acme-us"], plan.providers["acme"]
    assert us.mapping is eu.mapping
    assert us.base_url == "https://us.provider.test"  # trailing slash dropped
    assert us.vars["region"] == "us" and eu.vars["region"] == "eu"
    assert us.deadline == 4 and eu.deadline == 15


def test_inbound_key_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIT_INBOUND_KEY", "k-123")
    plan, _ = load(gateway(tmp_path, ACME.replace("inbound: none", "inbound: {key: {env: UNIT_INBOUND_KEY}, header: X-Key, scheme: null}")))
    inbound = plan.providers["acme"].inbound
    assert inbound.header == "X-Key" and inbound.expected.reveal() == "k-123"
    monkeypatch.setenv("UNIT_INBOUND_KEY", "k-456")
    plan, _ = load(gateway(tmp_path, ACME.replace("inbound: none", "inbound: {key: {env: UNIT_INBOUND_KEY}}")))
    assert plan.providers["acme"].inbound.header == "Authorization"
    assert plan.providers["acme"].inbound.expected.reveal() == "Bearer k-456"


@pytest.mark.parametrize(("change", "code", "words"), [
    (("secrets: {token: {file: token.txt}}", "secrets: {token: {file: token.txt}}\n  vars: {regoin: us}"), "GW041",
     ["regoin", "did you mean `region`"]),
    (("secrets: {token: {file: token.txt}}", "secrets: {tokn: {file: token.txt}}"), "GW042", ["tokn"]),
    (("secrets: {token: {file: token.txt}}", "secrets: {token: {file: missing.txt}}"), "GW040", ["token"]),
    (("acme:", "Acme:"), "GW043", ["Acme"]),
    (("secrets: {token: {file: token.txt}}", "secrets: {token: {file: token.txt}}\n  vars: {base_url: ftp://x}"),
     "GW045", ["absolute http(s)"]),
])
def test_binding_mistakes_are_errors(tmp_path, change, code, words):
    plan, diagnostics = load(gateway(tmp_path, ACME.replace(*change)))
    assert plan is None
    assert code in [d.code for d in diagnostics if d.severity == "error"], "\n".join(map(str, diagnostics))
    [d] = [d for d in diagnostics if d.code == code and words[0] in d.message]
    assert all(w in d.message for w in words) and d.file.endswith("gateway.yaml")


def test_a_misspelt_secret_is_unknown_and_the_declared_one_missing(tmp_path):
    plan, diagnostics = load(gateway(tmp_path, ACME.replace("{token: {file", "{tokn: {file")))
    messages = [d.message for d in diagnostics if d.code == "GW042"]
    assert plan is None and len(messages) == 2
    assert any("declares no secret `tokn`; did you mean `token`?" in m for m in messages)
    assert any("needs secret `token`" in m for m in messages)


def test_an_unset_secret_is_an_error_in_serve_and_a_warning_in_lint(tmp_path):
    path = gateway(tmp_path, ACME.replace("{file: token.txt}", "{env: UNIT_SURELY_UNSET_TOKEN}"))
    plan, diagnostics = load(path)
    assert plan is None and [(d.code, d.severity) for d in diagnostics] == [("GW040", "error")]
    plan, diagnostics = load(path, require_secrets=False, eager=False)
    assert plan is not None and [(d.code, d.severity) for d in diagnostics] == [("GW040", "warning")]


def test_plain_http_to_another_machine_is_a_warning_loopback_is_not(tmp_path):
    plan, diagnostics = load(gateway(tmp_path, ACME.replace("inbound: none", "inbound: none\n  vars: {base_url: http://cards.example}")))
    assert plan is not None and [(d.code, d.severity) for d in diagnostics] == [("GW046", "warning")]
    plan, diagnostics = load(gateway(tmp_path, ACME.replace("inbound: none", "inbound: none\n  vars: {base_url: http://127.0.0.1:9}")))
    assert plan is not None and diagnostics == []


def test_a_lease_shorter_than_a_deadline_is_refused(tmp_path):
    plan, diagnostics = load(gateway(tmp_path, ACME, "deadline: 30\nidempotency: {key_file: k, lease: 10}\n"))
    assert plan is None and [d.code for d in diagnostics] == ["GW048"] and "30s" in diagnostics[0].message


def test_a_missing_mapping_file(tmp_path):
    plan, diagnostics = load(gateway(tmp_path, ACME.replace("mapping: acme.yaml", "mapping: nowhere.yaml")))
    assert plan is None and [d.code for d in diagnostics] == ["GW006"]


def test_a_mappings_own_error_is_reported_in_the_mapping_file(tmp_path):
    path = gateway(tmp_path, ACME)
    (tmp_path / "acme.yaml").write_text(MAPPING.replace("request.identifier.number", "request.identifier.nmber"))
    plan, diagnostics = load(path)
    assert plan is None
    [d] = diagnostics
    assert d.code == "GW013" and d.file.endswith("acme.yaml")
    assert d.line == MAPPING.splitlines().index(next(l for l in MAPPING.splitlines() if "request.identifier.number" in l)) + 1


def test_no_encryption_key_configured_is_a_warning(tmp_path):
    plan, diagnostics = load(gateway(tmp_path, ACME, extra=""))
    assert plan is not None and [d.code for d in diagnostics] == ["GW047"]
    assert plan.idempotency.store_url.startswith("sqlite:///") and plan.idempotency.key_file.endswith("idempotency.key")
