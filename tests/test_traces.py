"""OpenTelemetry traces, with the SDK's in-memory exporter (and, for `gateway serve`, a real
OTLP/HTTP receiver): a server span per webhook continuing the caller's traceparent, a client
span per provider call whose traceparent reaches the simulator, no card number or PIN in any
span, and nothing of OpenTelemetry loaded while tracing is off."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.observe import tracing

from .conftest import ROOT, card_secrets
from .test_logs import BALANCE, _free_port, _serve, _stop

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
ACTIVATE = {"card_number": "6006495555555551", "amount": {"value": 40, "currency": "USD"},
            "customer": {"id": "cust-1"}, "idempotence_key": "trace-activate-1"}


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)


def _by_kind(exporter, kind):
    return [s for s in exporter.get_finished_spans() if s.kind == kind]


def test_a_webhook_continues_the_callers_trace_and_passes_it_upstream(gateway, sandbox, spans):
    response = gateway.post("/sandbox/gift_card/balance", json=BALANCE,
                            headers={"traceparent": PARENT, "X-Request-ID": "trace-1"})
    assert response.status_code == 200
    [server] = _by_kind(spans, SpanKind.SERVER)
    [client] = _by_kind(spans, SpanKind.CLIENT)
    assert format(server.context.trace_id, "032x") == TRACE_ID and server.parent.span_id == 0x00f067aa0ba902b7
    assert client.parent.span_id == server.context.span_id
    assert server.name == "POST balance" and client.name == "POST lookup"
    assert {k: server.attributes[k] for k in ("gateway.provider", "gateway.operation", "gateway.outcome",
                                              "http.response.status_code", "gateway.request_id")} == {
        "gateway.provider": "sandbox", "gateway.operation": "balance", "gateway.outcome": "ok",
        "http.response.status_code": 200, "gateway.request_id": "trace-1"}
    assert client.attributes["url.template"] == "/v1/cards/lookup" and client.attributes["gateway.step"] == "lookup"
    assert client.attributes["http.response.status_code"] == 200 and "url.full" not in client.attributes
    [call] = sandbox.calls()
    sent = {k.lower(): v for k, v in call["headers"].items()}["traceparent"]
    version, trace_id, span_id, _flags = sent.split("-")
    assert trace_id == TRACE_ID and int(span_id, 16) == client.context.span_id


def test_a_webhook_without_a_traceparent_starts_a_trace_the_provider_joins(gateway, sandbox, spans):
    gateway.post("/sandbox/gift_card/balance", json=BALANCE)
    [server] = _by_kind(spans, SpanKind.SERVER)
    assert server.parent is None
    sent = {k.lower(): v for k, v in sandbox.calls()[0]["headers"].items()}["traceparent"]
    assert sent.split("-")[1] == format(server.context.trace_id, "032x")


def test_no_card_number_or_pin_in_any_span(gateway, sandbox, spans):
    gateway.post("/sandbox/gift_card/balance", json=BALANCE)
    gateway.post("/sandbox/gift_card/balance", json={"identifier": {"number": "6006491111111111", "pin": "000000"}})
    assert gateway.post("/sandbox/gift_card/activate", json=ACTIVATE).status_code == 200  # the card is in its path
    secrets = card_secrets(sandbox.cards()) | {"000000"}
    finished = spans.get_finished_spans()
    assert len(finished) == 6
    text = json.dumps([[s.name, dict(s.attributes), [dict(e.attributes) for e in s.events]] for s in finished])
    leaked = {secret for secret in secrets if secret in text}
    assert not leaked, leaked
    [activate] = [s for s in finished if s.kind == SpanKind.CLIENT and "activate" in s.attributes["url.template"]]
    assert activate.attributes["url.template"].startswith("/v1/cards/{{ request.card_number")


def test_an_unknown_outcome_is_an_error_span(gateway, sandbox, spans):
    sandbox.fault("status", status=500)
    assert gateway.post("/sandbox/gift_card/balance", json=BALANCE).status_code == 502
    [server] = _by_kind(spans, SpanKind.SERVER)
    [client] = _by_kind(spans, SpanKind.CLIENT)
    assert client.status.status_code == StatusCode.ERROR and client.attributes["error.type"] == "500"
    assert server.attributes["gateway.outcome"] == "unknown" and server.attributes["gateway.error_code"] == "provider_error"
    assert server.status.status_code == StatusCode.ERROR


def test_when_off_nothing_of_opentelemetry_is_imported(sandbox):
    script = f"""
import sys, yaml, pathlib, tempfile
from litestar.testing import TestClient
from gateway.compile.gateway_file import load
from gateway.http.app import create_app
d = pathlib.Path(tempfile.mkdtemp())
(d / "gateway.yaml").write_text(yaml.safe_dump({{"providers": {{"sandbox": {{
    "mapping": "{ROOT}/mappings/sandbox.yaml", "vars": {{"base_url": "{sandbox.url}"}},
    "secrets": {{"api_key": {{"file": "{ROOT}/simulators/sandbox/sandbox.key"}}}}, "inbound": "none"}}}}}}))
plan, _ = load(d / "gateway.yaml")
with TestClient(create_app(plan)) as client:
    assert client.post("/sandbox/gift_card/balance", json={json.dumps(BALANCE)}).status_code == 200
# Litestar itself imports OpenTelemetry's attribute names (semconv) when the package is installed,
# at app construction; the gateway's tracing needs the API, the SDK and an exporter, none of them loaded.
print(sorted(m for m in sys.modules if m.startswith("opentelemetry") and not m.startswith("opentelemetry.semconv")))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("[]", "['opentelemetry']"), result.stdout  # the bare namespace package


@pytest.mark.parametrize("env, on", [
    ({}, False), ({"OTEL_TRACES_EXPORTER": "otlp"}, True), ({"OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
])
def test_which_environments_turn_tracing_on(env, on):
    assert tracing.wanted(env) is on


def test_what_serve_refuses():
    assert "zipkin" in tracing.problem({"OTEL_TRACES_EXPORTER": "zipkin"})
    assert "http/protobuf only" in tracing.problem({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert tracing.problem({"OTEL_TRACES_EXPORTER": "otlp,console"}) is None


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, int]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_serve_exports_over_otlp_when_the_environment_says_so(tmp_path, monkeypatch):
    collector = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    _Collector.received.clear()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_address[1]}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    try:
        proc, base, log = _serve(tmp_path, keep_otel=True)
        try:
            import httpx

            assert httpx.post(base + "/sandbox/gift_card/balance", json=BALANCE).status_code == 200
        finally:
            _stop(proc)  # the batch processor flushes at exit
    finally:
        collector.shutdown()
    assert ("/v1/traces", "application/x-protobuf") in {(p, t) for p, t, n in _Collector.received if n > 0}, log.read_text()


def test_serve_refuses_an_exporter_it_does_not_ship(tmp_path):
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "zipkin", "PYTHONPATH": str(ROOT)}
    (tmp_path / "m.yaml").write_text((ROOT / "mappings" / "sandbox.yaml").read_text())
    (tmp_path / "gateway.yaml").write_text("providers:\n  p:\n    mapping: m.yaml\n    inbound: none\n"
                                           f"    secrets: {{api_key: {{file: {ROOT}/simulators/sandbox/sandbox.key}}}}\n")
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--port", str(_free_port())], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    [line] = [json.loads(x) for x in result.stderr.splitlines() if "zipkin" in x]
    assert line["level"] == "error" and "not starting" in line["msg"]
