"""The step machinery: several steps passing data along, conditions, and every body kind.

Multi-step flows run against the sandbox simulator; body kinds run against a small loopback
echo server that answers with exactly what it received.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import SANDBOX_KEY_FILE, client_for, write_config

TWO_STEP = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
secrets: [api_key]
auth: {type: header, headers: {X-Api-Key: api_key}}
errors:
  - match: "result == 'refused'"
    error_code: refused
    message: "refused: {{ response.refusal.code }}"
operations:
  deactivate:
    steps:
      - name: lookup
        request:
          path: /v1/cards/lookup
          query: {store: "{{ request.store_id }}", absent: "{{ none }}"}
          json: {number: "{{ request.card_number | card_number }}", pin: "{{ request.pin }}"}
        success: "result == 'ok'"
        extract: {number: card.number, minor: card.balance.amount_minor}
      - name: deactivate
        if: steps.lookup.minor > 0
        request:
          path: "/v1/cards/{{ steps.lookup.number | urlsegment }}/deactivate"
          json: {pin: "{{ request.pin }}"}
        success: "result == 'ok'"
        extract: {at: card.deactivated_at}
    response:
      deactivated_at: "{{ steps.deactivate.at if steps.deactivate.response else now | rfc3339 }}"
  balance: {unsupported: not in this test}
  issue: {unsupported: not in this test}
  activate: {unsupported: not in this test}
"""


@pytest.fixture
def two_step(sandbox, tmp_path):
    mapping = tmp_path / "two_step.yaml"
    mapping.write_text(TWO_STEP)
    config = write_config(tmp_path, {"two": {
        "mapping": str(mapping), "vars": {"base_url": sandbox.url},
        "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none",
    }})
    with client_for(config) as client:
        yield client


def test_a_later_step_uses_what_an_earlier_step_extracted(two_step, sandbox):
    response = two_step.post("/two/gift_card/deactivate",
                             json={"card_number": "6006-4911-1111-1111", "pin": "480163", "store_id": "s1"})
    assert response.status_code == 200, response.text
    lookup, deactivate = sandbox.calls()
    assert lookup["query"] == "store=s1"
    assert deactivate["path"] == "/v1/cards/6006491111111111/deactivate"
    card = {c["number"]: c for c in sandbox.cards()}["6006491111111111"]
    assert response.json() == {"deactivated_at": card["deactivated_at"]}


def test_a_step_whose_condition_is_false_is_skipped(two_step, sandbox):
    sandbox.add_card("6006497777777777", pin="111111", amount_minor=0)
    response = two_step.post("/two/gift_card/deactivate", json={"card_number": "6006497777777777", "pin": "111111"})
    assert response.status_code == 200, response.text
    assert [c["path"] for c in sandbox.calls()] == ["/v1/cards/lookup"]
    assert response.json()["deactivated_at"].endswith("Z")  # from `now`, since the step did not run


def test_an_error_in_the_first_step_stops_the_flow(two_step, sandbox):
    response = two_step.post("/two/gift_card/deactivate", json={"card_number": "6006491111111111", "pin": "000000"})
    assert response.status_code == 400
    assert response.json()["message"] == "refused: invalid_pin"
    assert len(sandbox.calls()) == 1


def test_unsupported_operation_is_a_clear_400(two_step, sandbox):
    response = two_step.post("/two/gift_card/issue", json={"amount": {"value": 1, "currency": "USD"}, "customer": {"id": "c"}})
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "unsupported_operation",
        "message": "provider `two` does not support `issue`: not in this test",
        "request_accepted": False,
    }
    assert sandbox.calls() == []


# --- body kinds, against a loopback echo server --------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """Records each request it receives and answers ``{}``."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                              "auth": self.headers.get("Authorization"), "body": self.rfile.read(length).decode()})
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


BODIES = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
secrets: [user, password]
auth: {type: basic, username: user, password: password}
operations:
  balance:
    steps:
      - name: form
        request:
          path: /form
          form: {grant_type: client_credentials, number: "{{ request.identifier.number }}", flag: true, skip: "{{ none }}"}
      - name: graphql
        request:
          path: /graphql
          graphql:
            query: "query($code: String!) { giftCards(query: $code) { nodes { id } } }"
            variables: {code: "{{ request.identifier.number }}", first: 1}
      - name: xml
        request:
          path: /xml
          xml: |
            <BalanceRequest><Card>{{ request.identifier.number }}</Card></BalanceRequest>
      - name: text
        request:
          path: /text
          text: "number={{ request.identifier.number }}"
          content_type: text/csv
    response:
      value: 0
      currency: USD
"""


def test_body_kinds_are_encoded_as_their_kind(echo, tmp_path, monkeypatch):
    monkeypatch.setenv("ECHO_USER", "gateway")
    monkeypatch.setenv("ECHO_PASSWORD", "s3cret")
    mapping = tmp_path / "bodies.yaml"
    mapping.write_text(BODIES)
    config = write_config(tmp_path, {"echo": {
        "mapping": str(mapping), "vars": {"base_url": echo}, "inbound": "none",
        "secrets": {"user": {"env": "ECHO_USER"}, "password": {"env": "ECHO_PASSWORD"}},
    }})
    with client_for(config) as client:
        response = client.post("/echo/gift_card/balance", json={"identifier": {"number": "A&B<1>"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"value": 0, "currency": "USD"}
    form, graphql, xml, text = _Echo.received
    assert form == {"path": "/form", "content_type": "application/x-www-form-urlencoded",
                    "auth": "Basic Z2F0ZXdheTpzM2NyZXQ=",  # base64("gateway:s3cret")
                    "body": "grant_type=client_credentials&number=A%26B%3C1%3E&flag=true"}
    assert graphql["content_type"] == "application/json"
    assert json.loads(graphql["body"]) == {
        "query": "query($code: String!) { giftCards(query: $code) { nodes { id } } }",
        "variables": {"code": "A&B<1>", "first": 1},
    }
    # XML templates are autoescaped: a card number cannot inject markup.
    assert xml["content_type"] == "application/xml; charset=utf-8"
    assert xml["body"] == "<BalanceRequest><Card>A&amp;B&lt;1&gt;</Card></BalanceRequest>\n"
    assert text == {"path": "/text", "content_type": "text/csv", "auth": "Basic Z2F0ZXdheTpzM2NyZXQ=",
                    "body": "number=A&B<1>"}
