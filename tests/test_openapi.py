"""/schema: the webhooks' OpenAPI document, built from the contracts, checked against the live app.

schemathesis generates requests from the document (bounded: a few examples per operation, no
deadline per example, against a `gateway serve` on the sandbox) and checks that every answer
has a documented status, content type and body schema, and that none is a bug (500
internal_error). The document and the app can only agree if both come from the contracts.
"""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway import contracts
from tests.conftest import sandbox_provider, write_config
from tests.operations import Served

BALANCE = {"identifier": {"number": "6006491111111111", "pin": "480163"}}


@pytest.fixture(scope="module")
def live(sandbox, tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("openapi")
    providers = {"sandbox": sandbox_provider(sandbox), "sandbox-eu": sandbox_provider(sandbox)}
    with Served(write_config(folder, providers), folder / "serve.log") as gw:
        yield gw


@pytest.fixture(scope="module")
def api(live: Served) -> Any:
    return schemathesis.openapi.from_url(live.url + "/schema/openapi.json")


def test_the_document_describes_every_webhook_of_the_configured_providers(live):
    doc = httpx.get(live.url + "/schema/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    expected = {"/{provider}" + op.route.replace(":str", "") for op in contracts.OPERATIONS.values()}
    assert set(doc["paths"]) == expected
    for path, item in doc["paths"].items():
        [provider] = [p for p in item["post"]["parameters"] if p["name"] == "provider"]
        assert provider["schema"]["enum"] == ["sandbox", "sandbox-eu"], path
    gift = doc["paths"]["/{provider}/gift_card/issue"]["post"]["responses"]
    assert set(gift) == {"200", "400", "401", "404", "405", "408", "413", "415", "500", "502", "503", "504"}
    payment = doc["paths"]["/{provider}/financial_instruments"]["post"]["responses"]
    assert set(payment) == {"200", "400", "401", "404", "405", "408", "413", "415", "500"}
    # The UI page carries the same document.
    page = httpx.get(live.url + "/schema")
    assert page.status_code == 200 and "swagger" in page.text.lower() and "/{provider}/gift_card/balance" in page.text


def test_real_answers_validate_against_the_document(live):
    doc = httpx.get(live.url + "/schema/openapi.json").json()

    def schema_of(path: str, status: str) -> dict[str, Any]:
        ref = doc["paths"][path]["post"]["responses"][status]["content"]["application/json"]["schema"]
        return {**ref, "components": doc["components"]}

    ok = httpx.post(live.url + "/sandbox/gift_card/balance", json=BALANCE)
    assert ok.status_code == 200
    jsonschema.validate(ok.json(), schema_of("/{provider}/gift_card/balance", "200"))
    bad = httpx.post(live.url + "/sandbox/gift_card/balance", json={"identifier": {}})
    assert bad.status_code == 400
    jsonschema.validate(bad.json(), schema_of("/{provider}/gift_card/balance", "400"))
    # The schema is strict enough to catch a wrong body: a success is not an Error body.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(ok.json(), schema_of("/{provider}/gift_card/balance", "400"))


def not_a_bug(ctx: Any, response: Any, case: Any) -> None:
    """500 internal_error is the gateway's own bug, in either contract: never acceptable."""
    if response.status_code == 500:
        body = response.json()
        assert body.get("error_code") != "internal_error", f"a bug: {body}"


def test_webhooks_answer_as_documented(api, live):
    """Every operation, a few generated requests each (schemathesis' pytest plugin does not run
    under this pytest, so each operation's strategy is driven by hypothesis here)."""
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == len(contracts.OPERATIONS)
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_as_documented(case: Any) -> None:
            case.call_and_validate(base_url=live.url, timeout=20, checks=[
                not_a_bug, status_code_conformance, content_type_conformance, response_schema_conformance])

        answers_as_documented()
