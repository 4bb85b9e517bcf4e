"""An app mounted under a root path: the thin dispatch steps aside and Litestar's own webhook
routes answer, with the same body reader (400 on malformed JSON, 413 over the limit), no socket."""

from litestar.testing import TestClient

from gateway.compile.gateway_file import load
from gateway.http.app import create_app

from ..conftest import SANDBOX_KEY_FILE, SANDBOX_MAPPING, write_config


def test_webhooks_under_a_root_path_answer_through_litestar_with_the_same_body_rules(tmp_path):
    config = write_config(tmp_path, {"sandbox": {
        "mapping": str(SANDBOX_MAPPING), "vars": {"base_url": "http://127.0.0.1:9"},
        "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none"}}, idempotency={"key_file": "k.key"})
    plan, diagnostics = load(config)
    assert plan is not None, diagnostics
    json_type = {"content-type": "application/json"}
    with TestClient(create_app(plan, body_timeout=5), root_path="/gw") as client:
        malformed = client.post("/sandbox/gift_card/balance", content=b"{not json", headers=json_type)
        too_large = client.post("/sandbox/gift_card/balance", content=b"x" * (plan.max_body_bytes + 10), headers=json_type)
    assert malformed.status_code == 400 and malformed.json()["error_code"] == "invalid_request"
    assert malformed.json()["request_accepted"] is False
    assert too_large.status_code == 413 and too_large.json()["error_code"] == "request_too_large"
