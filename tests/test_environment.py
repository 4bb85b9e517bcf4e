"""`${VAR}` in gateway.yaml (gateway/config/environment.py), `GATEWAY_*` flag defaults
(gateway/cli_env.py) and `gateway --version`."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from gateway import cli_env
from gateway.compile.gateway_file import load

from .conftest import SANDBOX_KEY_FILE, SANDBOX_MAPPING

pytestmark = pytest.mark.unit

CONFIG = f"""\
deadline: ${{GW_TEST_DEADLINE:-12}}
providers:
  acme:
    mapping: {SANDBOX_MAPPING}
    inbound: none
    secrets: {{api_key: {{file: {SANDBOX_KEY_FILE}}}}}
    vars:
      base_url: "${{GW_TEST_BASE_URL}}"
idempotency:
  store: "sqlite:///${{GW_TEST_STORE_DIR:-.gateway}}/db.sqlite3"
  key_file: "$$HOME/k.key"
"""


def _load(tmp_path, monkeypatch, text=CONFIG, **env):
    for name in ("GW_TEST_DEADLINE", "GW_TEST_BASE_URL", "GW_TEST_STORE_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return load(path, require_secrets=False)


def test_variables_and_defaults_fill_values_typed_as_written(tmp_path, monkeypatch):
    plan, diagnostics = _load(tmp_path, monkeypatch, GW_TEST_BASE_URL="https://stage.acme.example")
    assert plan is not None, diagnostics
    provider = plan.providers["acme"]
    assert provider.base_url == "https://stage.acme.example"
    assert provider.deadline == 12  # a plain scalar: the number 12, as if written there
    assert plan.idempotency.store_url == "sqlite:///.gateway/db.sqlite3"
    assert plan.idempotency.key_file.endswith("/$HOME/k.key")  # `$$` is a literal `$`
    plan, _ = _load(tmp_path, monkeypatch, GW_TEST_BASE_URL="https://prod.acme.example", GW_TEST_DEADLINE="7.5",
                    GW_TEST_STORE_DIR="/var/lib/gw")
    assert (plan.providers["acme"].deadline, plan.idempotency.store_url) == (7.5, "sqlite:////var/lib/gw/db.sqlite3")


def test_an_unset_variable_without_default_is_a_diagnostic_at_its_position(tmp_path, monkeypatch):
    plan, diagnostics = _load(tmp_path, monkeypatch)
    assert plan is None
    (d,) = [d for d in diagnostics if d.code == "GW052"]
    line = CONFIG.splitlines().index('      base_url: "${GW_TEST_BASE_URL}"') + 1
    assert (d.line, d.col) == (line, len('      base_url: "') + 1)
    assert "GW_TEST_BASE_URL" in d.message and d.severity == "error"


def test_a_malformed_reference_is_a_diagnostic(tmp_path, monkeypatch):
    plan, diagnostics = _load(tmp_path, monkeypatch, CONFIG.replace("${GW_TEST_BASE_URL}", "https://${1x"))
    assert plan is None
    (d,) = [d for d in diagnostics if d.code == "GW052"]
    assert "starts no reference" in d.message and d.col == len('      base_url: "https://') + 1


def test_a_deadline_from_the_environment_that_is_not_a_number_is_a_type_error(tmp_path, monkeypatch):
    plan, diagnostics = _load(tmp_path, monkeypatch, GW_TEST_BASE_URL="https://x.example", GW_TEST_DEADLINE="soon")
    assert plan is None
    assert [(d.code, d.line) for d in diagnostics if d.severity == "error"] == [("GW004", 1)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info", choices=["debug", "info"])
    parser.add_argument("--no-companions", action="store_true")
    return parser


def test_gateway_variables_are_defaults_and_flags_win():
    parser = _parser()
    cli_env.apply(parser, {"GATEWAY_PORT": "9000", "GATEWAY_LOG_LEVEL": "DEBUG", "GATEWAY_NO_COMPANIONS": "yes"})
    args = parser.parse_args([])
    assert (args.port, args.log_level, args.no_companions) == (9000, "debug", True)
    assert parser.parse_args(["--port", "1"]).port == 1
    assert "[env: GATEWAY_PORT]" in parser.format_help()


@pytest.mark.parametrize("name,value", [("GATEWAY_PORT", "x"), ("GATEWAY_LOG_LEVEL", "loud"),
                                        ("GATEWAY_NO_COMPANIONS", "maybe")])
def test_a_bad_variable_is_refused_naming_it(name, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_env.apply(_parser(), {name: value})
    assert exit_.value.code == 2 and f"{name}={value!r}" in capsys.readouterr().err


def test_every_serve_flag_has_its_variable_in_the_readme(monkeypatch):
    from gateway.cli import main

    captured = {}

    def grab(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", grab)
    with pytest.raises(SystemExit):
        main(["serve"])
    sub = next(a for a in captured["parser"]._actions if isinstance(a, argparse._SubParsersAction))
    names = [name for name, _ in cli_env.flags(sub.choices["serve"])]
    assert {"GATEWAY_CONFIG", "GATEWAY_PORT", "GATEWAY_DRAIN_TIMEOUT", "GATEWAY_PID_FILE"} <= set(names)
    readme = (SANDBOX_MAPPING.parent.parent / "README.md").read_text()
    assert [name for name in names if f"`{name}`" not in readme] == []


def test_version_comes_from_the_package_metadata(capsys):
    from gateway.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"gateway {version('newstore-giftcard-gateway')}"
