"""The sandbox simulator's holds, redemptions (captures), credits (refunds) and releases, over HTTP.

Everything here talks to the simulator process (the session's ``sandbox`` fixture, reset before
each test); simulators/sandbox/README.md is the specification these tests hold it to.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from .conftest import SANDBOX_KEY_FILE, Sandbox

KEY = SANDBOX_KEY_FILE.read_text().strip()
AUTH = {"X-Api-Key": KEY}

USD_CARD, USD_PIN = "6006491111111111", "480163"  # active, 50.00 USD
NO_PIN_CARD = "6006496666666666"  # active, 20.00 EUR, no PIN
DEACTIVATED_CARD, DEACTIVATED_PIN = "6006494444444444", "602718"
REGISTERED_CARD, REGISTERED_PIN = "6006495555555551", "710551"

HOLD_ID = re.compile(r"^hold_[0-9a-f]{24}\Z")
REDEMPTION_ID = re.compile(r"^red_[0-9a-f]{24}\Z")
CREDIT_ID = re.compile(r"^crd_[0-9a-f]{24}\Z")
HOLD_FIELDS = {
    "id", "state", "amount_minor", "captured_minor", "refunded_minor", "remaining_minor",
    "currency", "card_last4", "reference", "created_at",
}


def post(sandbox: Sandbox, path: str, body: Any, *, key: str | None = None, **headers: str) -> httpx.Response:
    all_headers = {**AUTH, **headers}
    if key is not None:
        all_headers["Idempotency-Key"] = key
    return sandbox.http.post(path, json=body, headers=all_headers)


def hold(sandbox: Sandbox, amount_minor: int, *, number: str = USD_CARD, pin: str | None = USD_PIN,
         currency: str = "USD", key: str | None = None, **extra: Any) -> httpx.Response:
    body = {"number": number, "pin": pin, "amount_minor": amount_minor, "currency": currency, **extra}
    return post(sandbox, "/v1/holds", body, key=key)


def new_hold(sandbox: Sandbox, amount_minor: int, **kw: Any) -> dict[str, Any]:
    response = hold(sandbox, amount_minor, **kw)
    assert response.status_code == 201, response.text
    return response.json()["hold"]


def capture(sandbox: Sandbox, hold_id: str, amount_minor: int, *, key: str | None = None) -> httpx.Response:
    return post(sandbox, f"/v1/holds/{hold_id}/capture", {"amount_minor": amount_minor}, key=key)


def release(sandbox: Sandbox, hold_id: str, *, key: str | None = None) -> httpx.Response:
    return post(sandbox, f"/v1/holds/{hold_id}/release", {}, key=key)


def refund(sandbox: Sandbox, hold_id: str, amount_minor: int, *, key: str | None = None) -> httpx.Response:
    return post(sandbox, f"/v1/holds/{hold_id}/refund", {"amount_minor": amount_minor}, key=key)


def sim_card(sandbox: Sandbox, number: str = USD_CARD) -> dict[str, Any]:
    return {c["number"]: c for c in sandbox.cards()}[number]


def balance(sandbox: Sandbox, number: str = USD_CARD, pin: str | None = USD_PIN) -> int:
    """The balance as a client sees it (lookup), checked against the /_sim view."""
    looked_up = post(sandbox, "/v1/cards/lookup", {"number": number, "pin": pin}).json()
    amount = looked_up["card"]["balance"]["amount_minor"]
    card = sim_card(sandbox, number)
    assert card["balance"]["amount_minor"] == amount == card["funds_minor"] - card["held_minor"]
    return amount


def sim_holds(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.http.get("/_sim/holds").json()["holds"]


def refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] == "refused", body
    assert body["refusal"]["code"] == code, body
    assert isinstance(body["refusal"]["message"], str) and body["refusal"]["message"]


def error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


# --- creating a hold --------------------------------------------------------------------------


def test_hold_reserves_funds_and_shows_no_card_secrets(sandbox: Sandbox) -> None:
    response = hold(sandbox, 3000, reference="order-17")
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["result"] == "ok" and set(body) == {"result", "hold"}
    view = body["hold"]
    assert set(view) == HOLD_FIELDS
    assert HOLD_ID.match(view["id"])
    assert view | {"id": None, "created_at": None} == {
        "id": None, "state": "active", "amount_minor": 3000, "captured_minor": 0, "refunded_minor": 0,
        "remaining_minor": 3000, "currency": "USD", "card_last4": "1111", "reference": "order-17",
        "created_at": None,
    }
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z", view["created_at"])
    assert USD_CARD not in response.text and USD_PIN not in response.text
    assert balance(sandbox) == 2000
    assert sim_card(sandbox)["funds_minor"] == 5000 and sim_card(sandbox)["held_minor"] == 3000
    [listed] = sim_holds(sandbox)
    assert listed["card_number"] == USD_CARD and listed["redemptions"] == [] and listed["credits"] == []
    assert {k: listed[k] for k in HOLD_FIELDS} == view


def test_hold_reference_is_optional_and_each_hold_has_its_own_id(sandbox: Sandbox) -> None:
    first = new_hold(sandbox, 1000)
    second = new_hold(sandbox, 1000, reference=None)
    assert first["reference"] is None and second["reference"] is None
    assert first["id"] != second["id"]
    assert balance(sandbox) == 3000


def test_hold_of_the_whole_balance_then_nothing_more(sandbox: Sandbox) -> None:
    new_hold(sandbox, 3000)
    refused(hold(sandbox, 2001), "insufficient_funds")  # 2000 left: the first hold counts
    new_hold(sandbox, 2000)
    assert balance(sandbox) == 0
    refused(hold(sandbox, 1), "insufficient_funds")


def test_hold_on_a_card_without_pin_ignores_a_pin(sandbox: Sandbox) -> None:
    view = new_hold(sandbox, 500, number=NO_PIN_CARD, pin="000000", currency="EUR")
    assert view["card_last4"] == "6666"
    new_hold(sandbox, 500, number=NO_PIN_CARD, pin=None, currency="EUR")
    assert balance(sandbox, NO_PIN_CARD, None) == 1000


def test_hold_refusals_in_order(sandbox: Sandbox) -> None:
    error(hold(sandbox, 100, number="6006490000000000"), 404, "card_not_found")
    # The PIN comes first: a caller without it learns nothing about the card's state.
    refused(hold(sandbox, 100, pin=None), "invalid_pin")
    refused(hold(sandbox, 100, pin="000000"), "invalid_pin")
    refused(hold(sandbox, 100, number=DEACTIVATED_CARD, pin=None), "invalid_pin")
    refused(hold(sandbox, 100, number=DEACTIVATED_CARD, pin=DEACTIVATED_PIN, currency="EUR"), "card_deactivated")
    refused(hold(sandbox, 100, number=REGISTERED_CARD, pin=REGISTERED_PIN, currency="EUR"), "card_not_active")
    refused(hold(sandbox, 999_999, currency="EUR"), "currency_mismatch")
    refused(hold(sandbox, 5001), "insufficient_funds")
    assert sim_holds(sandbox) == []
    assert balance(sandbox) == 5000


@pytest.mark.parametrize(
    "body",
    [
        {"number": USD_CARD, "pin": USD_PIN, "amount_minor": 0, "currency": "USD"},
        {"number": USD_CARD, "pin": USD_PIN, "amount_minor": -5, "currency": "USD"},
        {"number": USD_CARD, "pin": USD_PIN, "amount_minor": 10.0, "currency": "USD"},
        {"number": USD_CARD, "pin": USD_PIN, "amount_minor": "10", "currency": "USD"},
        {"number": USD_CARD, "pin": USD_PIN, "amount_minor": 10, "currency": "usd"},
        {"number": USD_CARD, "pin": USD_PIN, "amount_minor": 10},
        {"number": "", "pin": USD_PIN, "amount_minor": 10, "currency": "USD"},
        {"pin": USD_PIN, "amount_minor": 10, "currency": "USD"},
        {"number": USD_CARD, "pin": USD_PIN, "amount_minor": 10, "currency": "USD", "store_ref": "x"},
    ],
)
def test_hold_bodies_are_strict(sandbox: Sandbox, body: dict[str, Any]) -> None:
    error(post(sandbox, "/v1/holds", body), 400, "invalid_request")
    assert sim_holds(sandbox) == []


def test_hold_endpoints_need_the_api_key(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 100)
    for path, body in [
        ("/v1/holds", {"number": USD_CARD, "pin": USD_PIN, "amount_minor": 1, "currency": "USD"}),
        (f"/v1/holds/{held['id']}/capture", {"amount_minor": 1}),
        (f"/v1/holds/{held['id']}/release", {}),
        (f"/v1/holds/{held['id']}/refund", {"amount_minor": 1}),
    ]:
        error(sandbox.http.post(path, json=body), 401, "unauthorized")
        error(sandbox.http.post(path, json=body, headers={"X-Api-Key": "nope"}), 401, "unauthorized")
    [listed] = sim_holds(sandbox)
    assert listed["remaining_minor"] == 100


# --- capture -------------------------------------------------------------------------------------


def test_capture_in_parts_until_captured(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 3000)
    response = capture(sandbox, held["id"], 1000)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"result", "hold", "redemption"} and body["result"] == "ok"
    assert body["hold"] | {"created_at": None} == held | {
        "captured_minor": 1000, "remaining_minor": 2000, "created_at": None,
    }
    assert REDEMPTION_ID.match(body["redemption"]["id"])
    assert body["redemption"] | {"id": None} == {"id": None, "amount_minor": 1000, "currency": "USD"}
    assert USD_CARD not in response.text
    assert sim_card(sandbox)["funds_minor"] == 4000 and balance(sandbox) == 2000

    second = capture(sandbox, held["id"], 2000).json()
    assert second["hold"]["state"] == "captured"
    assert (second["hold"]["captured_minor"], second["hold"]["remaining_minor"]) == (3000, 0)
    assert second["redemption"]["id"] != body["redemption"]["id"]
    assert sim_card(sandbox)["funds_minor"] == 2000 and balance(sandbox) == 2000
    [listed] = sim_holds(sandbox)
    assert [r["amount_minor"] for r in listed["redemptions"]] == [1000, 2000]


def test_capture_refusals(sandbox: Sandbox) -> None:
    error(capture(sandbox, "hold_000000000000000000000000", 100), 404, "hold_not_found")
    held = new_hold(sandbox, 1000)
    refused(capture(sandbox, held["id"], 1001), "exceeds_hold")
    capture(sandbox, held["id"], 400)
    refused(capture(sandbox, held["id"], 601), "exceeds_hold")
    capture(sandbox, held["id"], 600)
    refused(capture(sandbox, held["id"], 1), "hold_not_active")  # captured in full

    other = new_hold(sandbox, 1000)
    release(sandbox, other["id"])
    refused(capture(sandbox, other["id"], 1), "hold_not_active")  # released
    assert sim_card(sandbox)["funds_minor"] == 4000 and balance(sandbox) == 4000


@pytest.mark.parametrize("body", [{"amount_minor": 0}, {"amount_minor": 1.5}, {}, {"amount_minor": 1, "x": 1}])
def test_capture_bodies_are_strict(sandbox: Sandbox, body: dict[str, Any]) -> None:
    held = new_hold(sandbox, 1000)
    error(post(sandbox, f"/v1/holds/{held['id']}/capture", body), 400, "invalid_request")
    assert sim_holds(sandbox)[0]["remaining_minor"] == 1000


# --- release --------------------------------------------------------------------------------------


def test_release_frees_what_is_left(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 3000)
    capture(sandbox, held["id"], 1200)
    response = release(sandbox, held["id"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"result", "hold", "released_minor"} and body["result"] == "ok"
    assert body["released_minor"] == 1800
    assert body["hold"]["state"] == "released"
    assert (body["hold"]["remaining_minor"], body["hold"]["captured_minor"]) == (0, 1200)
    assert balance(sandbox) == 3800 and sim_card(sandbox)["held_minor"] == 0


def test_release_refusals(sandbox: Sandbox) -> None:
    error(release(sandbox, "hold_000000000000000000000000"), 404, "hold_not_found")
    held = new_hold(sandbox, 500)
    release(sandbox, held["id"])
    refused(release(sandbox, held["id"]), "hold_not_active")
    captured = new_hold(sandbox, 500)
    capture(sandbox, captured["id"], 500)
    refused(release(sandbox, captured["id"]), "hold_not_active")
    assert balance(sandbox) == 4500


def test_release_body_must_be_an_empty_object(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 500)
    error(post(sandbox, f"/v1/holds/{held['id']}/release", {"amount_minor": 1}), 400, "invalid_request")
    error(sandbox.http.post(f"/v1/holds/{held['id']}/release", headers=AUTH), 400, "invalid_request")
    assert sim_holds(sandbox)[0]["state"] == "active"


# --- refund ---------------------------------------------------------------------------------------


def test_refund_credits_the_card_in_any_hold_state(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 3000)
    refused(refund(sandbox, held["id"], 1), "exceeds_captured")  # nothing captured yet
    capture(sandbox, held["id"], 1000)
    response = refund(sandbox, held["id"], 400)  # hold still active
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"result", "hold", "credit"} and body["result"] == "ok"
    assert CREDIT_ID.match(body["credit"]["id"])
    assert body["credit"] | {"id": None} == {"id": None, "amount_minor": 400, "currency": "USD"}
    assert body["hold"]["refunded_minor"] == 400 and body["hold"]["state"] == "active"
    assert balance(sandbox) == 2400  # 5000 - 1000 + 400 funds, 2000 held

    refused(refund(sandbox, held["id"], 601), "exceeds_captured")
    release(sandbox, held["id"])
    assert refund(sandbox, held["id"], 600).json()["hold"]["state"] == "released"
    refused(refund(sandbox, held["id"], 1), "exceeds_captured")
    assert balance(sandbox) == 5000

    full = new_hold(sandbox, 700)
    capture(sandbox, full["id"], 700)
    assert refund(sandbox, full["id"], 700).json()["hold"]["state"] == "captured"
    assert balance(sandbox) == 5000
    [_, listed] = sim_holds(sandbox)
    assert [c["amount_minor"] for c in listed["credits"]] == [700]


def test_refund_refusals(sandbox: Sandbox) -> None:
    error(refund(sandbox, "hold_000000000000000000000000", 1), 404, "hold_not_found")
    held = new_hold(sandbox, 1000)
    capture(sandbox, held["id"], 1000)
    post(sandbox, f"/v1/cards/{USD_CARD}/deactivate", {"pin": USD_PIN}).raise_for_status()
    refused(refund(sandbox, held["id"], 1), "card_deactivated")
    refused(refund(sandbox, held["id"], 5000), "card_deactivated")
    assert sim_card(sandbox)["funds_minor"] == 0


# --- the balance through a whole hold ------------------------------------------------------------


def test_balance_arithmetic(sandbox: Sandbox) -> None:
    assert balance(sandbox) == 5000
    held = new_hold(sandbox, 3000)
    assert balance(sandbox) == 2000
    capture(sandbox, held["id"], 2000)
    assert balance(sandbox) == 2000
    assert capture(sandbox, held["id"], 1000).json()["hold"]["state"] == "captured"
    assert balance(sandbox) == 2000
    refund(sandbox, held["id"], 500)
    assert balance(sandbox) == 2500
    card = sim_card(sandbox)
    assert (card["funds_minor"], card["held_minor"]) == (2500, 0)


# --- interactions with cards and controls ---------------------------------------------------------


def test_deactivating_a_card_releases_its_holds(sandbox: Sandbox) -> None:
    first = new_hold(sandbox, 1000)
    second = new_hold(sandbox, 2000)
    capture(sandbox, second["id"], 2000)
    other = new_hold(sandbox, 500, number=NO_PIN_CARD, pin=None, currency="EUR")
    deactivated = post(sandbox, f"/v1/cards/{USD_CARD}/deactivate", {})
    assert deactivated.json()["card"]["balance"]["amount_minor"] == 0
    holds = {h["id"]: h for h in sim_holds(sandbox)}
    assert (holds[first["id"]]["state"], holds[first["id"]]["remaining_minor"]) == ("released", 0)
    assert holds[second["id"]]["state"] == "captured"
    assert holds[other["id"]]["state"] == "active"
    assert (sim_card(sandbox)["funds_minor"], sim_card(sandbox)["held_minor"]) == (0, 0)
    refused(capture(sandbox, first["id"], 1), "hold_not_active")
    assert balance(sandbox, NO_PIN_CARD, None) == 1500


def test_replacing_a_card_releases_its_holds(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 1000)
    sandbox.add_card(USD_CARD, pin=USD_PIN, amount_minor=700)
    assert balance(sandbox) == 700
    assert sim_holds(sandbox)[0]["state"] == "released"
    refused(capture(sandbox, held["id"], 1), "hold_not_active")


def test_reset_clears_holds(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 1000)
    sandbox.reset()
    assert sim_holds(sandbox) == []
    assert balance(sandbox) == 5000
    error(capture(sandbox, held["id"], 1), 404, "hold_not_found")


@pytest.mark.parametrize("mode", ["status", "garbage"])
def test_faults_apply_to_hold_endpoints(sandbox: Sandbox, mode: str) -> None:
    held = new_hold(sandbox, 1000)
    fault = {"status": 503} if mode == "status" else {}
    attempts = [
        lambda: hold(sandbox, 100, key="f-hold"),
        lambda: capture(sandbox, held["id"], 100, key="f-capture"),
        lambda: refund(sandbox, held["id"], 100, key="f-refund"),
        lambda: release(sandbox, held["id"], key="f-release"),
    ]
    for attempt in attempts:
        sandbox.fault(mode, **fault)
        response = attempt()
        if mode == "status":
            error(response, 503, "simulated_fault")
        else:
            assert response.status_code == 200 and response.text == "<html>upstream exploded</html>"
    # Nothing changed, and faulted requests were not stored: the same keys now run for real.
    [listed] = sim_holds(sandbox)
    assert (listed["remaining_minor"], listed["captured_minor"]) == (1000, 0)
    assert balance(sandbox) == 4000
    assert hold(sandbox, 100, key="f-hold").status_code == 201
    assert capture(sandbox, held["id"], 100, key="f-capture").json()["result"] == "ok"
    assert refund(sandbox, held["id"], 100, key="f-refund").json()["result"] == "ok"
    assert release(sandbox, held["id"], key="f-release").json()["released_minor"] == 900
    assert balance(sandbox) == 4900


def test_delay_fault_then_normal_handling(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 1000)
    sandbox.fault("delay", seconds=0.3)
    response = capture(sandbox, held["id"], 250)
    assert response.json()["result"] == "ok"
    assert balance(sandbox) == 4000 and sim_card(sandbox)["funds_minor"] == 4750


def test_hold_calls_are_recorded_with_the_key_masked(sandbox: Sandbox) -> None:
    sandbox.http.delete("/_sim/calls")
    held = new_hold(sandbox, 100, reference="r")
    capture(sandbox, held["id"], 100, key="k-1")
    calls = sandbox.calls()
    assert [c["path"] for c in calls] == ["/v1/holds", f"/v1/holds/{held['id']}/capture"]
    assert calls[0]["body"]["reference"] == "r"
    assert calls[1]["headers"]["x-api-key"] == "***" and calls[1]["headers"]["idempotency-key"] == "k-1"


# --- idempotency -----------------------------------------------------------------------------------


def test_capture_replay_with_the_same_key_redeems_once(sandbox: Sandbox) -> None:
    held = new_hold(sandbox, 3000)
    first = capture(sandbox, held["id"], 1000, key="cap-1")
    again = capture(sandbox, held["id"], 1000, key="cap-1")
    assert again.status_code == first.status_code == 200
    assert again.content == first.content
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    [listed] = sim_holds(sandbox)
    assert len(listed["redemptions"]) == 1
    assert (listed["captured_minor"], listed["remaining_minor"]) == (1000, 2000)
    assert sim_card(sandbox)["funds_minor"] == 4000

    # The replay stands even after the hold changed; another body with the key is a 422.
    capture(sandbox, held["id"], 2000)
    assert capture(sandbox, held["id"], 1000, key="cap-1").content == first.content
    error(capture(sandbox, held["id"], 999, key="cap-1"), 422, "idempotency_key_reused")
    error(refund(sandbox, held["id"], 1000, key="cap-1"), 422, "idempotency_key_reused")
    assert len(sim_holds(sandbox)[0]["redemptions"]) == 2


def test_hold_release_and_refund_replays(sandbox: Sandbox) -> None:
    first = hold(sandbox, 1000, key="h-1")
    again = hold(sandbox, 1000, key="h-1")
    assert again.status_code == 201 and again.content == first.content
    assert again.headers.get("idempotent-replayed") == "true"
    assert len(sim_holds(sandbox)) == 1 and balance(sandbox) == 4000
    hold_id = first.json()["hold"]["id"]

    capture(sandbox, hold_id, 600)
    credited = refund(sandbox, hold_id, 200, key="r-1")
    assert refund(sandbox, hold_id, 200, key="r-1").content == credited.content
    assert len(sim_holds(sandbox)[0]["credits"]) == 1

    released = release(sandbox, hold_id, key="rel-1")
    replayed = release(sandbox, hold_id, key="rel-1")
    assert replayed.content == released.content and replayed.json()["result"] == "ok"
    assert balance(sandbox) == 4600  # 5000 - 600 + 200


def test_refusals_are_replayed_too(sandbox: Sandbox) -> None:
    refused(hold(sandbox, 6000, key="big"), "insufficient_funds")
    sandbox.add_card(USD_CARD, pin=USD_PIN, amount_minor=10_000)
    refused(hold(sandbox, 6000, key="big"), "insufficient_funds")  # replayed, though it would pass now
    error(capture(sandbox, "hold_000000000000000000000000", 1, key="nf"), 404, "hold_not_found")
    replay = capture(sandbox, "hold_000000000000000000000000", 1, key="nf")
    assert replay.status_code == 404 and replay.headers.get("idempotent-replayed") == "true"
