"""`omit`: a JSON field or list item whose template renders to it is left out of the request.

Headers, query and form already drop `null`; a JSON body cannot (null is a JSON value), so a
mapping says `omit` where a provider wants an optional field absent rather than null
(`"{{ request.identifier.pin | default(omit, true) }}"`). Anywhere `omit` would have to become
text (inside a string, a path, an XML body, a condition) it is an error, never a placeholder.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway.tools.lint import lint
from gateway.language.templating import OMIT, RenderError, Where, compile_string

from .conftest import client_for, write_config

HERE = Where("m.yaml", "x")


def _compile(raw):
    """Compile a YAML-like structure the way the loader does (strings may be templates)."""
    from gateway.language.templating import Const, DictValue, ListValue

    if isinstance(raw, str):
        return compile_string(raw, HERE)
    if isinstance(raw, dict):
        return DictValue(tuple((k, _compile(v)) for k, v in raw.items()))
    if isinstance(raw, list):
        return ListValue(tuple(_compile(v) for v in raw))
    return Const(raw)


@pytest.mark.parametrize(("pin", "expected"), [
    ("1234", {"number": "6006", "securityCode": "1234"}),
    (None, {"number": "6006"}),
    ("", {"number": "6006"}),
])
def test_a_field_that_renders_to_omit_is_left_out(pin, expected):
    value = _compile({"number": "6006", "securityCode": "{{ pin if pin else omit }}"})
    assert value.render({"pin": pin}) == expected
    with_default = _compile({"number": "6006", "securityCode": "{{ pin | default(omit, true) }}"})
    assert with_default.render({"pin": pin}) == expected


def test_omit_in_nested_objects_and_lists():
    value = _compile({"a": {"b": "{{ omit }}", "c": [1, "{{ omit }}", "{{ x }}"]}, "d": "{{ none }}"})
    # `null` stays null in JSON: only `omit` removes a field or an item.
    assert value.render({"x": 3}) == {"a": {"c": [1, 3]}, "d": None}


def test_omit_turned_into_text_is_an_error_not_a_string():
    for source in ("x{{ omit }}", "{{ omit ~ '' }}", "{{ omit | string }}", "{{ omit | tojson }}"):
        with pytest.raises(RenderError) as caught:
            compile_string(source, HERE).render({})
        assert "omit" in caught.value.message or "JSON" in caught.value.message, source
    # A single expression keeps its type: the sentinel itself, for a container to leave out.
    assert compile_string("{{ omit }}", HERE).render({}) is OMIT


def _lint(tmp_path: Path, body: str) -> list:
    path = tmp_path / "m.yaml"
    path.write_text(body)
    return [d for d in lint([path]) if d.severity == "error"]


MAPPING = """\
base_url: https://api.example.com
operations:
  balance:
    steps:
      - name: lookup
        {step}
        request:
          path: {path}
          {body}
        extract: {{minor: balance}}
    response:
      value: "{{{{ steps.lookup.minor | from_minor('USD') }}}}"
      currency: USD
  issue: {{unsupported: not offered}}
  activate: {{unsupported: not offered}}
  deactivate: {{unsupported: not offered}}
"""


def test_lint_knows_omit_in_json_and_graphql_variables(tmp_path):
    json_body = 'json: {pin: "{{ request.identifier.pin | default(omit, true) }}", tags: ["{{ omit }}"]}'
    assert _lint(tmp_path, MAPPING.format(step="", path="/cards", body=json_body)) == []
    graphql = ('graphql: {query: "query($p: String) { x(p: $p) }", '
               'variables: {p: "{{ request.identifier.pin if request.identifier.pin else omit }}"}}')
    assert _lint(tmp_path, MAPPING.format(step="", path="/cards", body=graphql)) == []


@pytest.mark.parametrize(("step", "path", "body"), [
    ("", "/cards", 'json: {pin: "pin={{ omit }}"}'),                     # inside text
    ("", '"/cards/{{ omit }}"', 'json: {a: 1}'),                          # a path
    ("", "/cards", 'xml: "<A>{{ request.identifier.pin or omit }}</A>"'),  # an XML body
    ("", "/cards", 'json: "{{ omit }}"'),                                 # the whole body
    ('if: "omit"', "/cards", 'json: {a: 1}'),                             # a condition
])
def test_lint_refuses_omit_where_it_would_become_text(tmp_path, step, path, body):
    [problem] = _lint(tmp_path, MAPPING.format(step=step, path=path, body=body))
    assert problem.code == "GW012"
    assert "`omit`" in problem.message


# --- over HTTP: what the provider receives ---------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo():
    _Echo.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


ECHO_MAPPING = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
operations:
  balance:
    steps:
      - name: json
        request:
          path: /json
          json:
            paymentMethod:
              number: "{{ request.identifier.number }}"
              securityCode: "{{ request.identifier.pin | default(omit, true) }}"
            tags: ["a", "{{ request.identifier.pin and 'pin' or omit }}"]
      - name: graphql
        request:
          path: /graphql
          graphql:
            query: "query($n: String!, $p: String) { card(n: $n, p: $p) { id } }"
            variables: {n: "{{ request.identifier.number }}", p: "{{ request.identifier.pin or omit }}"}
    response: {value: 0, currency: USD}
  issue: {unsupported: not in this test}
  activate: {unsupported: not in this test}
  deactivate: {unsupported: not in this test}
"""


@pytest.mark.parametrize("pin", ["4321", None])
def test_the_provider_receives_no_field_for_an_omitted_value(echo, tmp_path, pin):
    mapping = tmp_path / "echo.yaml"
    mapping.write_text(ECHO_MAPPING)
    config = write_config(tmp_path, {"echo": {"mapping": str(mapping), "vars": {"base_url": echo}, "inbound": "none"}})
    identifier = {"number": "6006"} if pin is None else {"number": "6006", "pin": pin}
    with client_for(config) as client:
        response = client.post("/echo/gift_card/balance", json={"identifier": identifier})
    assert response.status_code == 200, response.text
    sent_json, sent_graphql = _Echo.received
    if pin is None:
        assert sent_json == {"paymentMethod": {"number": "6006"}, "tags": ["a"]}
        assert sent_graphql["variables"] == {"n": "6006"}
    else:
        assert sent_json == {"paymentMethod": {"number": "6006", "securityCode": pin}, "tags": ["a", "pin"]}
        assert sent_graphql["variables"] == {"n": "6006", "p": pin}
