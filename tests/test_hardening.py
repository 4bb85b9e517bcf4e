"""Defences found by review: each was a real failure before it was fixed."""

from __future__ import annotations

import gzip
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.config.model import SecretRef
from gateway.config.secrets import SecretUnavailable, resolve
from gateway.language.expressions import Compiled, ExpressionError, search

from .conftest import client_for, sandbox_provider, write_config
from .newstore_spec import EXAMPLES, check_error
from .test_provider_errors import variant


class _Recorder(BaseHTTPRequestHandler):
    """Answers per path: `/big` a 3 MB gzip bomb, anything else `{"next": <other server>}`."""

    def do_POST(self) -> None:  # noqa: N802
        self.server.received.append({"path": self.path, "headers": dict(self.headers)})  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/big":
            body = gzip.compress(b'{"pad": "' + b"x" * 3_000_000 + b'"}')
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
        else:
            body = json.dumps({"next": self.server.next_url}).encode()  # type: ignore[attr-defined]
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def two_servers():
    servers = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.received = []  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    home, elsewhere = servers
    home.next_url = f"http://127.0.0.1:{elsewhere.server_address[1]}/collect"  # type: ignore[attr-defined]
    elsewhere.next_url = ""  # type: ignore[attr-defined]
    yield home, elsewhere
    for server in servers:
        server.shutdown()
        server.server_close()


FOLLOW = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
secrets: [token]
auth: {type: bearer, token: token}
headers: {Accept: application/json}
max_response_bytes: 65536
operations:
  balance:
    steps:
      - name: first
        request: {path: /first, headers: {accept: application/vnd.provider.v2+json, authorization: forged}}
        extract: {next: next}
      - name: second
        request: {url: "{{ steps.first.next }}"}
    response: {value: 0, currency: USD}
  issue:
    steps:
      - name: big
        request: {path: /big}
    response: {identifier: {number: "x"}}
  activate: {unsupported: test}
  deactivate: {unsupported: test}
"""


@pytest.fixture
def follow(two_servers, tmp_path, monkeypatch):
    home, _ = two_servers
    monkeypatch.setenv("FOLLOW_TOKEN", "tok-123456789\n")  # a trailing newline, as `echo` leaves it
    mapping = tmp_path / "follow.yaml"
    mapping.write_text(FOLLOW)
    config = write_config(tmp_path, {"p": {
        "mapping": str(mapping), "vars": {"base_url": f"http://127.0.0.1:{home.server_address[1]}"},
        "secrets": {"token": {"env": "FOLLOW_TOKEN"}}, "inbound": "none"}})
    with client_for(config) as client:
        yield client


def test_credentials_go_only_to_the_providers_own_origin(follow, two_servers):
    home, elsewhere = two_servers
    response = follow.post("/p/gift_card/balance", json={"identifier": {"number": "1"}})
    assert response.status_code == 200, response.text
    [first] = home.received
    [second] = elsewhere.received
    assert first["headers"]["Authorization"] == "Bearer tok-123456789"  # stripped, and auth wins over the step's
    assert "Authorization" not in second["headers"]
    # A step's header replaces the mapping's of the same name, whatever its case.
    assert first["headers"]["accept"] == "application/vnd.provider.v2+json"
    assert "Accept" not in first["headers"]


def test_an_answer_larger_than_the_limit_is_refused_not_buffered(follow):
    response = follow.post("/p/gift_card/issue", json=EXAMPLES["issue"])
    assert response.status_code == 502
    assert response.json()["error_code"] == "provider_bad_response"
    assert "larger than 65536 bytes" in response.json()["message"]
    assert response.json()["request_accepted"] is True


@pytest.mark.parametrize("value", ["sk\nlive", "sk\x07x", "clé"])
def test_secrets_with_control_or_non_ascii_characters_are_refused_at_load(value, monkeypatch, tmp_path):
    monkeypatch.setenv("BAD_SECRET", value)
    with pytest.raises(SecretUnavailable) as info:
        resolve(SecretRef(env="BAD_SECRET"), tmp_path)
    assert value not in str(info.value)


def test_a_non_ascii_idempotence_key_is_hashed_for_the_provider(gateway, sandbox):
    body = {**EXAMPLES["issue"], "idempotence_key": "clé-ünïcode-1"}
    response = gateway.post("/sandbox/gift_card/issue", json=body)
    assert response.status_code == 200, response.text
    sent = sandbox.calls()[0]["headers"]["idempotency-key"]
    assert sent.isascii() and len(sent) == 64


def test_a_non_ascii_header_is_a_mapping_error_before_anything_is_sent(sandbox, tmp_path):
    mapping = variant(tmp_path, ("derive('issue') | fit_key(64, 'A-Za-z0-9_.:-')", "derive('issue')"))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/issue", json={**EXAMPLES["issue"], "idempotence_key": "clé"})
    assert response.status_code == 502
    assert response.json()["error_code"] == "mapping_error"
    assert response.json()["request_accepted"] is False
    assert "header `Idempotency-Key` renders to a value with non-ASCII" in response.json()["message"]
    assert sandbox.calls() == []


def test_a_response_that_cannot_be_encoded_is_a_mapping_error(sandbox, tmp_path):
    mapping = variant(tmp_path, ('      metadata: "{{ request.metadata }}"\n\n  deactivate:',
                                 '      metadata: {tags: "{{ request.metadata.tags | map(\'upper\') }}"}\n\n  deactivate:'))
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox, mapping)})
    body = {**EXAMPLES["activate"], "card_number": "6006495555555553", "metadata": {"tags": ["a"]}}
    with client_for(config) as client:
        response = client.post("/sandbox/gift_card/activate", json=body)
    assert response.status_code == 502
    check_error(response.json())
    assert response.json()["error_code"] == "mapping_error"
    assert "cannot be encoded as JSON" in response.json()["message"]


def test_jmespath_functions_work_on_exact_decimals():
    data = {"a": [Decimal("1.5"), Decimal("2.25")], "b": Decimal("10.25"), "s": "12.50"}
    assert Compiled("sum(a)").search(data) == Decimal("3.75")
    assert Compiled("max(a)").search(data) == Decimal("2.25")
    assert Compiled("type(b)").search(data) == "number"
    assert Compiled("to_string(b)").search(data) == "10.25"
    assert Compiled("to_number(s)").search(data) == Decimal("12.50")


def test_jmespath_errors_do_not_quote_values():
    with pytest.raises(ExpressionError) as info:
        search(Compiled("starts_with(pin, '4')"), {"pin": 480163})
    assert "480163" not in str(info.value)
    assert str(info.value) == "function `starts_with()` got a value of the wrong type (expected string, got number)"


def test_the_leak_check_itself_finds_card_data():
    from .conftest import _leaks, card_secrets

    cards = card_secrets({"cards": [{"number": "6006491111111111", "pin": "480163", "state": "active"}]})
    assert cards == {"6006491111111111", "480163"}
    assert _leaks('{"card":"6006491111111111"} pin=480163', cards) == cards
    assert _leaks('{"card":"****1111","duration_ms":4801.63}', cards) == set()


def test_card_numbers_and_pins_sent_as_numbers_are_masked_too():
    from gateway.redact import Redactor

    redactor = Redactor(["6006 4911 2222 3333"], ["480163"])
    assert redactor.data({"account": 6006491122223333, "access": 480163, "amount": 10}) == {
        "account": "****3333", "access": "***", "amount": 10}
