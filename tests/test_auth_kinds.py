"""Upstream auth kinds and XML, against a small provider on loopback: OAuth2 client credentials
(one token shared, cached, refreshed once on 401), HMAC signatures, XML in and out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from prometheus_client import REGISTRY

from .conftest import client_for, write_config

SECRET = "hmac-secret-123"


class _Provider(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        server = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/oauth/token":
            fields = parse_qs(body.decode())
            if fields.get("client_id") != ["cid"] or fields.get("client_secret") != ["csecret"]:
                return self._send(401, b'{"error":"invalid_client"}')
            server.fetches += 1
            server.token = f"tok-{server.fetches}"
            return self._send(200, json.dumps({"access_token": server.token, "expires_in": server.lifetime}).encode())
        if self.path == "/api/balance":
            if self.headers.get("Authorization") != f"Bearer {server.token}":
                return self._send(401, b"<Error>expired</Error>", "text/xml")
            server.seen.append(body.decode())
            xml = (b'<BalanceResponse xmlns="urn:test"><ResponseCode>APPROVED</ResponseCode>'
                   b'<BalanceAmount currencyCode="USD">50.00</BalanceAmount></BalanceResponse>')
            return self._send(200, xml, "text/xml")
        if self.path == "/signed":
            message = f"{self.headers['API-Key']}-POST-signed-{json.loads(body)['ref']}-{self.headers['Timestamp']}"
            expected = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(expected, self.headers.get("Signature", ""))
            return self._send(200 if ok else 401, b'{"ok": true}' if ok else b'{"ok": false}')
        self._send(404, b"{}")

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    server.fetches, server.token, server.lifetime, server.seen = 0, None, 3600, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


OAUTH_XML = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
secrets: [client_id, client_secret]
auth:
  type: oauth2
  token_url: "{{ vars.base_url }}/oauth/token"
  client_id: client_id
  client_secret: client_secret
operations:
  balance:
    steps:
      - name: balance
        request:
          path: /api/balance
          xml: <BalanceRequest><Card>{{ request.identifier.number }}</Card></BalanceRequest>
        parse: xml
        success: "BalanceResponse.ResponseCode == 'APPROVED'"
        extract:
          amount: BalanceResponse.BalanceAmount."#text"
          currency: BalanceResponse.BalanceAmount."@currencyCode"
    response:
      value: "{{ steps.balance.amount | to_decimal }}"
      currency: "{{ steps.balance.currency }}"
  issue: {unsupported: test}
  activate: {unsupported: test}
  deactivate: {unsupported: test}
"""


def _oauth_config(provider, tmp_path, monkeypatch):
    monkeypatch.setenv("T_CLIENT_ID", "cid")
    monkeypatch.setenv("T_CLIENT_SECRET", "csecret")
    (tmp_path / "m.yaml").write_text(OAUTH_XML)
    return write_config(tmp_path, {"p": {
        "mapping": str(tmp_path / "m.yaml"), "vars": {"base_url": f"http://127.0.0.1:{provider.server_address[1]}"},
        "secrets": {"client_id": {"env": "T_CLIENT_ID"}, "client_secret": {"env": "T_CLIENT_SECRET"}},
        "inbound": "none"}}, idempotency={"key_file": "k.key"})


@pytest.fixture
def oauth(provider, tmp_path, monkeypatch):
    with client_for(_oauth_config(provider, tmp_path, monkeypatch)) as client:
        yield client


BALANCE = {"identifier": {"number": "A<&>1"}}


def test_oauth2_token_is_fetched_once_and_reused(oauth, provider):
    for _ in range(3):
        response = oauth.post("/p/gift_card/balance", json=BALANCE)
        assert response.status_code == 200, response.text
        assert response.json() == {"value": 50.00, "currency": "USD"}
    assert provider.fetches == 1
    # XML templates escape what they insert; XML answers are read with attributes.
    assert provider.seen[0] == "<BalanceRequest><Card>A&lt;&amp;&gt;1</Card></BalanceRequest>"


def test_oauth2_token_is_refreshed_once_on_401(oauth, provider):
    def counted() -> float:  # gateway_oauth_token_fetches_total{provider="p"}, in this process
        return REGISTRY.get_sample_value("gateway_oauth_token_fetches_total", {"provider": "p"}) or 0.0

    before = counted()
    assert oauth.post("/p/gift_card/balance", json=BALANCE).status_code == 200
    provider.token = "revoked-by-the-provider"
    response = oauth.post("/p/gift_card/balance", json=BALANCE)
    assert response.status_code == 200, response.text
    assert provider.fetches == 2
    assert counted() - before == 2  # the metric counts what the token endpoint saw


def test_concurrent_requests_share_one_token_fetch(provider, tmp_path, monkeypatch):
    config = _oauth_config(provider, tmp_path, monkeypatch)
    from litestar.testing import AsyncTestClient

    from gateway.http.app import create_app
    from gateway.compile.gateway_file import load

    plan, _ = load(config)

    async def burst():
        async with AsyncTestClient(create_app(plan)) as client:
            return await asyncio.gather(*(client.post("/p/gift_card/balance", json=BALANCE) for _ in range(20)))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {200}
    assert provider.fetches == 1


def test_an_expiring_token_is_fetched_again_before_it_expires(oauth, provider):
    provider.lifetime = 30  # below the 60 s refresh margin: every use needs a fresh one
    oauth.post("/p/gift_card/balance", json=BALANCE)
    oauth.post("/p/gift_card/balance", json=BALANCE)
    assert provider.fetches == 2


def test_a_failing_token_endpoint_is_unreachable_not_a_crash(oauth, provider, monkeypatch):
    provider.token = None
    monkeypatch.setattr(_Provider, "do_POST", lambda self: self._send(500, b"{}"))
    response = oauth.post("/p/gift_card/balance", json=BALANCE)
    assert response.status_code == 502
    assert response.json()["error_code"] == "provider_unreachable"
    assert response.json()["request_accepted"] is False
    assert "csecret" not in response.text


HMAC = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
secrets: [api_key, api_secret]
auth:
  type: hmac
  key: api_key
  secret: api_secret
  message: "{{ api_key }}-{{ method }}-signed-{{ body.ref }}-{{ timestamp }}"
  headers: {API-Key: "{{ api_key }}", Signature: "{{ signature }}", Timestamp: "{{ timestamp }}"}
operations:
  balance:
    steps:
      - name: signed
        request: {path: /signed, json: {ref: "{{ request.identifier.number }}"}}
        success: ok
    response: {value: 1, currency: USD}
  issue: {unsupported: test}
  activate: {unsupported: test}
  deactivate: {unsupported: test}
"""


def test_hmac_signed_requests_verify_at_the_provider(provider, tmp_path, monkeypatch):
    monkeypatch.setenv("T_KEY", "key-1")
    monkeypatch.setenv("T_SECRET", SECRET)
    (tmp_path / "h.yaml").write_text(HMAC)
    config = write_config(tmp_path, {"p": {
        "mapping": str(tmp_path / "h.yaml"), "vars": {"base_url": f"http://127.0.0.1:{provider.server_address[1]}"},
        "secrets": {"api_key": {"env": "T_KEY"}, "api_secret": {"env": "T_SECRET"}}, "inbound": "none"}},
        idempotency={"key_file": "k.key"})
    with client_for(config) as client:
        good = client.post("/p/gift_card/balance", json={"identifier": {"number": "ref-1"}})
    assert good.status_code == 200, good.text
    monkeypatch.setenv("T_SECRET", "another-secret")
    with client_for(config) as client:
        bad = client.post("/p/gift_card/balance", json={"identifier": {"number": "ref-1"}})
    assert bad.status_code == 502 and bad.json()["details"]["upstream_status"] == 401
