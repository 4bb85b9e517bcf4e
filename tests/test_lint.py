"""`gateway lint`: one data file per rule, both directions against serve's loader, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.diagnostics import RULES
from gateway.compile.gateway_file import load, load_mapping

from .lint_docs import PAGE, ROOT, generate, load_cases, run

ALL = load_cases()


def test_every_rule_has_a_case_and_every_case_a_rule():
    assert sorted(ALL) == sorted(RULES)
    for code, case in ALL.items():
        assert case["path"].name.startswith(f"{code}-{RULES[code].name.replace('.', '-')}")


@pytest.mark.parametrize("code", sorted(ALL))
def test_rule_case(code):
    case = ALL[code]
    found = run(case["files"])
    assert [[d.code, d.line, d.col] for d in found if d.code == code] == case["expect"], "\n".join(map(str, found))
    assert all(d.severity == RULES[code].severity for d in found if d.code == code and code != "GW040")
    fixed = run(case["fixed"])
    assert fixed == [], "\n".join(map(str, fixed))


def _serve_accepts(files: dict[str, str], folder: Path) -> bool:
    """What `gateway serve` decides: it loads with the same loader, secrets required."""
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    if "gateway.yaml" in files:
        plan, _ = load(folder / "gateway.yaml")
    else:
        plan, _ = load_mapping(folder / "m.yaml")
    return plan is not None


@pytest.mark.parametrize("code", sorted(ALL))
def test_lint_and_serve_agree(code, tmp_path):
    case = ALL[code]
    for name, files in (("bad", case["files"]), ("fixed", case["fixed"])):
        lint_errors = any(d.severity == "error" for d in run(files))
        serve_ok = _serve_accepts(files, tmp_path / name)
        if code == "GW040" and files is case["files"]:
            # The one documented difference: an unset secret is the environment's, not the
            # config's: a warning where lint runs (CI), an error where serve runs.
            assert not lint_errors and not serve_ok
            continue
        assert lint_errors == (not serve_ok), code


def test_the_rules_page_is_current():
    assert PAGE.read_text() == generate(), "regenerate it: python -m tests.lint_docs > docs/lint-rules.md"


# --- the command --------------------------------------------------------------------------

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def gateway_lint(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINT_CASE")}
    return subprocess.run(GATEWAY + ["lint", *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_shipped_configuration_and_mappings_lint_clean():
    result = gateway_lint(cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "no problems found\n"


def test_exit_codes(tmp_path):
    bad = _write(tmp_path / "bad", ALL["GW013"]["files"])
    warn = _write(tmp_path / "warn", ALL["GW036"]["files"])
    clean = _write(tmp_path / "clean", ALL["GW013"]["fixed"])
    assert gateway_lint("m.yaml", cwd=clean).returncode == 0
    assert gateway_lint("m.yaml", cwd=bad).returncode == 1
    assert gateway_lint("m.yaml", cwd=warn).returncode == 0
    assert gateway_lint("--strict", "m.yaml", cwd=warn).returncode == 1
    usage = gateway_lint("missing.yaml", cwd=clean)
    assert usage.returncode == 2 and "missing.yaml does not exist" in usage.stderr
    assert gateway_lint("--format", "xml", cwd=clean).returncode == 2


def test_text_output(tmp_path):
    bad = _write(tmp_path, ALL["GW013"]["files"])
    result = gateway_lint("m.yaml", cwd=bad)
    assert result.stdout == (
        "m.yaml:6:56: GW013 `request.card_number` does not exist: `balance` requests carry identifier.number, "
        "identifier.pin, metadata (at operations.balance.steps[0].request.json.number)\n"
        "1 error, 0 warnings\n"
    )


def test_json_output_is_a_stable_list(tmp_path):
    bad = _write(tmp_path, ALL["GW036"]["files"])
    result = gateway_lint("--format", "json", "m.yaml", cwd=bad)
    assert json.loads(result.stdout) == [{
        "file": "m.yaml", "line": 7, "col": 35, "code": "GW036", "name": "mapping.unused-extract",
        "severity": "warning", "message": "step `lookup` extracts `state`, which nothing reads",
        "keypath": "operations.balance.steps[0].extract.state",
    }]


def test_github_output_annotates(tmp_path):
    bad = _write(tmp_path, ALL["GW021"]["files"])
    result = gateway_lint("--format", "github", "m.yaml", cwd=bad)
    assert result.stdout.splitlines() == [
        "::error file=m.yaml,line=7,col=26,title=GW021 jmespath.unknown-function::"
        "JMESPath function `lenght()` does not exist; did you mean `length`?",
        "1 error, 0 warnings",
    ]


def test_lint_without_paths_reads_config_and_the_mappings_folder(tmp_path):
    files = dict(ALL["GW013"]["fixed"])
    _write(tmp_path, {"gateway.yaml": "idempotency: {key_file: k.key}\nproviders:\n  acme:\n    mapping: mappings/m.yaml\n    inbound: none\n"})
    _write(tmp_path / "mappings", {"m.yaml": files["m.yaml"], "unused.yaml": ALL["GW021"]["files"]["m.yaml"]})
    result = gateway_lint(cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith("mappings/unused.yaml:7:26: GW021")
    assert "mappings/m.yaml" not in result.stdout
