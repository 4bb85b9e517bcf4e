"""Over-HTTP check of the provider simulators: ``python -m simulators.smoke [adyen] [square] [sandbox]``.

Starts each simulator as its own process on a free port (``--port 0``), exercises every endpoint,
every error it documents and every ``/_sim`` control with httpx, stops the process, and checks
that it printed exactly its one start-up line and no card number or security code. Exits 1 if any
check failed. Runs from any folder: each simulator is started from the folder holding this package.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]  # the folder holding the `simulators` package


class Failed(AssertionError):
    pass


def expect(response: httpx.Response, status: int, subset: dict[str, Any] | None = None) -> Any:
    """Asserts the status and that the JSON body contains ``subset`` (recursively for dicts)."""
    if response.status_code != status:
        raise Failed(f"HTTP {response.status_code} (expected {status}): {response.text[:300]}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if subset is not None:
        _contains(body, subset, "$")
    return body


def _contains(actual: Any, wanted: Any, where: str) -> None:
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            raise Failed(f"{where}: expected an object, got {actual!r}")
        for key, value in wanted.items():
            if key not in actual:
                raise Failed(f"{where}: missing `{key}` in {actual!r}")
            _contains(actual[key], value, f"{where}.{key}")
    elif actual != wanted:
        raise Failed(f"{where}: {actual!r} != {wanted!r}")


class Runner:
    def __init__(self, name: str) -> None:
        self.name = name
        self.passed = 0
        self.failed: list[str] = []

    def check(self, label: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - report every failure, keep going
            self.failed.append(f"{self.name}: {label}: {type(exc).__name__}: {exc}")
            print(f"  FAIL {label}: {exc}")
        else:
            self.passed += 1
            print(f"  ok   {label}")


@contextmanager
def simulator(module: str, *args: str) -> Iterator[tuple[str, str, Callable[[], tuple[str, str]]]]:
    """Runs ``python -m module --port 0 *args``; yields (label, URL, stop); stop() returns (stdout rest, stderr)."""
    err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.fullmatch(r"(.+) listening on (http://[\d.]+:\d+)\n", line)
    if not match:
        proc.kill()
        proc.wait()
        err.seek(0)
        raise RuntimeError(f"{module} did not start: {line!r} {err.read().decode(errors='replace')}")
    url = match.group(2)
    for _ in range(100):
        try:
            httpx.get(f"{url}/_sim/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    stopped: list[tuple[str, str]] = []

    def stop() -> tuple[str, str]:
        if not stopped:
            proc.terminate()
            rest = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            proc.wait(10)
            err.seek(0)
            stopped.append((rest, err.read().decode(errors="replace")))
        return stopped[0]

    try:
        yield match.group(1), url, stop
    finally:
        stop()
        err.close()


def check_quiet(run: Runner, label: str, expected_label: str, stop: Callable[[], tuple[str, str]], secrets: set[str]):
    def quiet() -> None:
        if label != expected_label:
            raise Failed(f"start-up line says {label!r}, expected {expected_label!r}")
        rest, stderr = stop()
        if rest:
            raise Failed(f"printed more than the start-up line: {rest[:200]!r}")
        leaked = sorted(s for s in secrets if s and s in stderr)
        if leaked:
            raise Failed(f"card data in the process output: {leaked}")

    run.check("one start-up line, nothing else printed, no card data in stderr", quiet)


def check_sim_controls(
    run: Runner,
    http: httpx.Client,
    api_call: Callable[[], httpx.Response],
    secret_header: str,
    unknown_path: str = "/definitely/not/an/endpoint",
) -> None:
    """The ``/_sim`` controls every simulator shares (call log, faults, reset)."""

    def health() -> None:
        expect(http.get("/_sim/health"), 200, {"status": "ok"})

    def call_log() -> None:
        http.delete("/_sim/calls").raise_for_status()
        api_call()
        http.get("/_sim/health")  # never recorded
        calls = expect(http.get("/_sim/calls"), 200)["calls"]
        if len(calls) != 1:
            raise Failed(f"expected 1 recorded call, got {len(calls)}")
        call = calls[0]
        if set(call) != {"method", "path", "query", "headers", "body"}:
            raise Failed(f"call fields: {sorted(call)}")
        if call["headers"].get(secret_header) != "***":
            raise Failed(f"{secret_header} not masked: {call['headers'].get(secret_header)!r}")
        expect(http.delete("/_sim/calls"), 204)
        if http.get("/_sim/calls").json()["calls"]:
            raise Failed("call log not cleared")

    def unknown_path_recorded() -> None:
        http.delete("/_sim/calls")
        http.post(f"{unknown_path}?x=1", content=b"plain text", headers={"content-type": "text/plain"})
        calls = http.get("/_sim/calls").json()["calls"]
        if len(calls) != 1:
            raise Failed(f"expected 1 recorded call, got {len(calls)}")
        _contains(calls[0], {"method": "POST", "path": unknown_path, "query": "x=1", "body": "plain text"}, "$")

    def fault_queue() -> None:
        body = expect(http.post("/_sim/faults", json={"mode": "status", "status": 502, "times": 2}), 201)
        _contains(body, {"faults": [{"mode": "status", "remaining": 2, "status": 502}]}, "$")
        expect(http.delete("/_sim/faults"), 204)
        if api_call().status_code == 502:
            raise Failed("fault still applied after DELETE /_sim/faults")
        expect(http.post("/_sim/faults", json={"mode": "status"}), 400)
        expect(http.post("/_sim/faults", json={"mode": "delay", "seconds": 1, "status": 500}), 400)
        expect(http.post("/_sim/faults", json={"mode": "nope"}), 400)
        expect(http.post("/_sim/faults", content=b"{}", headers={"content-type": "text/plain"}), 415)

    def delay_fault() -> None:
        http.post("/_sim/faults", json={"mode": "delay", "seconds": 0.4}).raise_for_status()
        started = time.monotonic()
        api_call()
        if time.monotonic() - started < 0.4:
            raise Failed("delay fault did not delay")

    def garbage_fault() -> None:
        http.post("/_sim/faults", json={"mode": "garbage"}).raise_for_status()
        response = api_call()
        if response.status_code != 200 or response.text != "<html>upstream exploded</html>":
            raise Failed(f"garbage fault: {response.status_code} {response.text[:80]!r}")
        if response.headers["content-type"] != "application/json":
            raise Failed("garbage fault must claim application/json")

    def unknown_sim_route() -> None:
        expect(http.get("/_sim/nope"), 404, {"error": {"code": "not_found"}})

    for label, fn in [
        ("GET /_sim/health", health),
        ("call log: recorded, masked, cleared", call_log),
        ("unknown paths are recorded too", unknown_path_recorded),
        ("POST/DELETE /_sim/faults, fault validation", fault_queue),
        ("delay fault", delay_fault),
        ("garbage fault", garbage_fault),
        ("unknown /_sim route: neutral 404", unknown_sim_route),
    ]:
        run.check(label, fn)


# --- Adyen ---------------------------------------------------------------------------------------

ADYEN_BASE = "/pal/servlet/StoredValue/v46"


def run_adyen() -> Runner:
    run = Runner("adyen")
    key = (ROOT / "simulators/adyen/adyen.key").read_text().strip()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as basic_file:
        basic_file.write("ws_123456@Company.SimCompany:s3cret-pass\n")
    print("adyen:")
    with simulator("simulators.adyen", "--basic-auth-file", basic_file.name) as (label, url, stop):
        http = httpx.Client(base_url=url, timeout=10)
        h = {"X-API-Key": key}
        merchant = "TestMerchantGateway"

        def call(path: str, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
            return http.post(ADYEN_BASE + path, json=body, headers=h if headers is None else headers, **kw)

        def pm(number: str, code: str | None = None, brand: str = "givex") -> dict[str, str]:
            return {"type": brand, "number": number, **({"securityCode": code} if code else {})}

        def req(number: str, code: str | None = None, brand: str = "givex", **extra: Any) -> dict[str, Any]:
            return {
                "merchantAccount": merchant,
                "reference": "ref-1",
                "paymentMethod": pm(number, code, brand),
                **extra,
            }

        usd = "6036280000000001001"
        http.post("/_sim/reset").raise_for_status()
        seeded = http.get("/_sim/cards").json()["cards"]
        secrets = {c["number"] for c in seeded} | {c["securityCode"] for c in seeded if c["securityCode"]}

        def check_balance_ok() -> None:
            expect(
                call("/checkBalance", req(usd, "41093")),
                200,
                {"resultCode": "Success", "currentBalance": {"currency": "USD", "value": 5000}},
            )
            body = call("/checkBalance", req("6036280000000002002", "58214")).json()
            _contains(body, {"currentBalance": {"currency": "JPY", "value": 10000}}, "$")
            body = call("/checkBalance", req("6006490000000003003", "7720", "svs")).json()
            _contains(body, {"currentBalance": {"currency": "KWD", "value": 12345}}, "$")
            if not re.fullmatch(r"[0-9A-Z]{16}", body["pspReference"]):
                raise Failed(f"pspReference {body['pspReference']!r}")

        def basic_auth() -> None:
            token = base64.b64encode(b"ws_123456@Company.SimCompany:s3cret-pass").decode()
            expect(call("/checkBalance", req(usd, "41093"), {"Authorization": f"Basic {token}"}), 200)
            wrong = base64.b64encode(b"ws_123456@Company.SimCompany:nope").decode()
            expect(call("/checkBalance", req(usd, "41093"), {"Authorization": f"Basic {wrong}"}), 401)

        def auth_errors() -> None:
            want = {"status": 401, "errorCode": "000", "errorType": "security"}
            expect(call("/checkBalance", req(usd, "41093"), {}), 401, want)
            expect(call("/checkBalance", req(usd, "41093"), {"X-API-Key": "wrong"}), 401, want)
            expect(http.post(ADYEN_BASE + "/nope", json={}), 401, want)  # auth before routing

        def refusals() -> None:
            def refused(body: dict[str, Any], reason: str, path: str = "/checkBalance") -> None:
                expect(call(path, body), 200, {"resultCode": "Refused", "refusalReason": reason})

            refused(req("6036289999999999999", "1"), "Invalid Card Number")
            refused(req(usd, "11111"), "Invalid Pin")
            refused(req(usd), "Invalid Pin")  # checkBalance needs the security code
            refused(req(usd, "41093", "svs"), "Invalid Card Number")  # another brand's number
            refused(req("6036280000000004004", "30571"), "Blocked Card")
            refused(req("6036280000000005501", "22551"), "Transaction Not Permitted")
            amount = {"amount": {"currency": "JPY", "value": 100}}
            refused(req(usd, **amount), "Invalid Amount", "/load")
            expect(
                call("/checkBalance", req(usd, "41093", amount={"currency": "USD", "value": 5001})),
                200,
                {"resultCode": "NotEnoughBalance", "currentBalance": {"value": 5000}},
            )

        def issue_load_void() -> None:
            issued = expect(
                call(
                    "/issue",
                    {
                        "merchantAccount": merchant,
                        "reference": "r",
                        "paymentMethod": {"type": "givex"},
                        "amount": {"currency": "EUR", "value": 1000},
                    },
                ),
                200,
                {"resultCode": "Success", "currentBalance": {"currency": "EUR", "value": 1000}},
            )
            method = issued["paymentMethod"]
            secrets.update({method["number"], method["securityCode"]})
            if method["type"] != "givex" or not method["number"].isdigit():
                raise Failed(f"issued paymentMethod {method!r}")
            new = req(method["number"], method["securityCode"])
            expect(call("/checkBalance", new), 200, {"resultCode": "Success"})  # auto-activated
            loaded = expect(
                call("/load", {**new, "amount": {"currency": "EUR", "value": 250}, "loadType": "merchandiseReturn"}),
                200,
                {"resultCode": "Success", "currentBalance": {"value": 1250}},
            )
            expect(
                call("/voidTransaction", {"merchantAccount": merchant, "originalReference": loaded["pspReference"]}),
                200,
                {"resultCode": "Success", "currentBalance": {"value": 1000}},
            )
            expect(
                call("/voidTransaction", {"merchantAccount": merchant, "originalReference": loaded["pspReference"]}),
                200,
                {"resultCode": "Refused", "refusalReason": "Transaction Not Permitted"},
            )
            expect(
                call("/voidTransaction", {"merchantAccount": merchant, "originalReference": issued["pspReference"]}),
                200,
                {"resultCode": "Success", "currentBalance": {"value": 0}},
            )
            expect(call("/checkBalance", new), 200, {"refusalReason": "Blocked Card"})
            expect(
                call(
                    "/issue",
                    {
                        "merchantAccount": merchant,
                        "reference": "r",
                        "paymentMethod": {"type": "svs"},
                        "amount": {"currency": "USD", "value": 500},
                    },
                ),
                200,
                {"resultCode": "Success"},
            )
            for brand, amount, status in [("svs", None, 422), ("valuelink", {"currency": "USD", "value": 1}, 422)]:
                body = {"merchantAccount": merchant, "reference": "r", "paymentMethod": {"type": brand}}
                if amount:
                    body["amount"] = amount
                expect(call("/issue", body), status, {"errorCode": "137"})

        def change_status() -> None:
            pending = "6036280000000005503"
            expect(call("/checkBalance", req(pending, "22553")), 200, {"refusalReason": "Transaction Not Permitted"})
            activated = expect(
                call("/changeStatus", req(pending, status="active", amount={"currency": "USD", "value": 3000})),
                200,
                {"resultCode": "Success", "currentBalance": {"currency": "USD", "value": 3000}},
            )
            expect(
                call("/changeStatus", req(pending, status="active")),
                200,
                {"refusalReason": "Transaction Not Permitted"},
            )
            expect(
                call("/voidTransaction", {"merchantAccount": merchant, "originalReference": activated["pspReference"]}),
                200,
                {"currentBalance": {"value": 0}},
            )
            expect(call("/checkBalance", req(pending, "22553")), 200, {"refusalReason": "Transaction Not Permitted"})
            preloaded = req("6006490000000006006", brand="svs", status="active", amount={"currency": "USD", "value": 1})
            expect(call("/changeStatus", preloaded), 200, {"refusalReason": "Invalid Amount"})
            preloaded.pop("amount")
            expect(call("/changeStatus", preloaded), 200, {"currentBalance": {"value": 2500}})
            expect(call("/changeStatus", req(usd, "00000", status="inactive")), 200, {"refusalReason": "Invalid Pin"})
            expect(
                call("/changeStatus", req(usd, status="inactive", amount={"currency": "USD", "value": 1})),
                422,
                {"errorCode": "137"},
            )
            expect(call("/changeStatus", req(usd, status="inactive")), 200, {"currentBalance": {"value": 0}})
            expect(call("/changeStatus", req(usd, status="inactive")), 200, {"refusalReason": "Blocked Card"})
            expect(call("/changeStatus", req(usd, status="active")), 200, {"refusalReason": "Blocked Card"})
            http.post("/_sim/reset").raise_for_status()

        def validation() -> None:
            def error(body: Any, status: int, code: str, path: str = "/checkBalance", **kw: Any) -> None:
                expect(call(path, body, **kw), status, {"status": status, "errorCode": code})

            ok = req(usd, "41093")
            error({**ok, "merchantAccount": "SomeoneElse"}, 403, "901")
            error({k: v for k, v in ok.items() if k != "merchantAccount"}, 403, "901")
            error({k: v for k, v in ok.items() if k != "reference"}, 422, "130")
            error({**ok, "reference": "x" * 81}, 422, "29_001")
            error({**ok, "store": "x" * 17}, 422, "29_001")
            error({**ok, "merchantReference": "x"}, 422, "702")  # unknown field
            error({**ok, "paymentMethod": {**ok["paymentMethod"], "cvc": "41093"}}, 422, "702")  # unknown field
            error({**ok, "paymentMethod": {"type": "visa", "number": usd}}, 422, "905")
            error({**ok, "paymentMethod": {"type": "givex"}}, 422, "101")
            error({**ok, "paymentMethod": {"type": "givex", "number": "12-34"}}, 422, "101")
            error({**ok, "paymentMethod": {"type": "givex", "number": 6036280000000001001}}, 422, "702")
            error({k: v for k, v in ok.items() if k != "paymentMethod"}, 422, "158")
            error({**ok, "shopperInteraction": "Phone"}, 422, "702")
            error({**ok, "amount": {"currency": "USD", "value": 10.5}}, 422, "137", "/load")
            error({**ok, "amount": {"currency": "USD", "value": 10.0}}, 422, "137", "/load")
            error({**ok, "amount": {"currency": "USD", "value": "1000"}}, 422, "137", "/load")
            error({**ok, "amount": {"currency": "USD", "value": 0}}, 422, "137", "/load")
            error({**ok, "amount": {"currency": "USD", "value": -5}}, 422, "137", "/checkBalance")
            error({**ok, "amount": {"currency": "XYZ", "value": 5}}, 422, "138", "/load")
            error({**ok, "amount": {"currency": "US", "value": 5}}, 422, "138", "/load")
            error({**ok, "amount": {"value": 5}}, 422, "137", "/load")
            error(ok, 422, "100", "/load")
            error({**ok, "status": "paused"}, 422, "702", "/changeStatus")
            error(ok, 422, "158", "/changeStatus")
            error({"merchantAccount": merchant}, 422, "167", "/voidTransaction")
            error(
                {"merchantAccount": merchant, "originalReference": "0000000000000000"}, 422, "906", "/voidTransaction"
            )
            error(
                {"merchantAccount": merchant, "reference": "r", "paymentMethod": {"type": "givex", "number": usd}},
                422,
                "702",
                "/issue",
            )
            raw = {"X-API-Key": key, "Content-Type": "application/json"}
            expect(http.post(ADYEN_BASE + "/load", content=b"", headers=raw), 400, {"errorCode": "702"})
            expect(
                http.post(ADYEN_BASE + "/load", content=b'{"merchantAccount":', headers=raw), 400, {"errorCode": "702"}
            )
            expect(http.post(ADYEN_BASE + "/load", content=b"[1]", headers=raw), 400, {"errorCode": "702"})
            text = {"X-API-Key": key, "Content-Type": "text/plain"}
            expect(http.post(ADYEN_BASE + "/load", content=b"{}", headers=text), 415, {"errorCode": "000"})

        def routing_errors() -> None:
            expect(http.post("/pal/servlet/StoredValue/v45/checkBalance", json={}, headers=h), 404, {"status": 404})
            expect(http.post(ADYEN_BASE + "/mergeBalance", json={}, headers=h), 404, {"status": 404})
            expect(http.get(ADYEN_BASE + "/checkBalance", headers=h), 405, {"status": 405})
            expect(http.request("OPTIONS", ADYEN_BASE + "/checkBalance", headers=h), 405, {"status": 405})
            big = {**h, "Content-Type": "application/json"}
            expect(
                http.post(ADYEN_BASE + "/load", content=b" " * (1024 * 1024 + 1), headers=big),
                413,
                {"errorCode": "29_100"},
            )

        def idempotency() -> None:
            body = {"merchantAccount": merchant, "reference": "idem", "paymentMethod": {"type": "givex"}}
            first = call("/issue", body, {**h, "Idempotency-Key": "key-1"})
            expect(first, 200, {"resultCode": "Success"})
            secrets.update({first.json()["paymentMethod"]["number"], first.json()["paymentMethod"]["securityCode"]})
            if first.headers.get("idempotency-key") != "key-1":
                raise Failed("Idempotency-Key not echoed")
            reordered = (
                b'{"paymentMethod":{"type":"givex"},  "reference":"idem","merchantAccount":"TestMerchantGateway"}'
            )
            again = http.post(
                ADYEN_BASE + "/issue",
                content=reordered,
                headers={**h, "Idempotency-Key": "key-1", "Content-Type": "application/json"},
            )
            if again.status_code != 200 or again.content != first.content:
                raise Failed("same key and body was not replayed byte for byte")
            expect(
                call("/issue", {**body, "reference": "other"}, {**h, "Idempotency-Key": "key-1"}),
                422,
                {"status": 422, "errorCode": "704", "errorType": "validation"},
            )
            expect(call("/issue", body, {**h, "Idempotency-Key": "k" * 65}), 422, {"errorCode": "702"})
            # A rejected request is not stored: the key stays usable.
            expect(call("/load", req(usd), {**h, "Idempotency-Key": "key-2"}), 422, {"errorCode": "100"})
            expect(
                call("/load", req(usd, amount={"currency": "USD", "value": 1}), {**h, "Idempotency-Key": "key-2"}), 200
            )

        def provider_faults() -> None:
            http.post("/_sim/faults", json={"mode": "status", "status": 429}).raise_for_status()
            expect(call("/checkBalance", req(usd, "41093")), 429, {"status": 429, "errorCode": "000"})
            http.post("/_sim/faults", json={"mode": "status", "status": 500}).raise_for_status()
            expect(call("/checkBalance", req(usd, "41093")), 500, {"status": 500, "errorType": "internal"})
            http.post("/_sim/faults", json={"mode": "status", "status": 401}).raise_for_status()
            expect(call("/checkBalance", req(usd, "41093")), 401, {"errorType": "security"})

        def sim_cards() -> None:
            card = {
                "type": "svs",
                "number": "6006491234567890123",
                "status": "active",
                "value": 777,
                "currency": "CHF",
                "securityCode": "4321",
            }
            secrets.update({card["number"], card["securityCode"]})
            expect(http.post("/_sim/cards", json=card), 201, {"card": {"balance": {"value": 777, "currency": "CHF"}}})
            expect(call("/checkBalance", req(card["number"], "4321", "svs")), 200, {"currentBalance": {"value": 777}})
            expect(http.post("/_sim/cards", json={**card, "value": 7.5}), 400, {"error": {"code": "invalid_request"}})
            expect(http.post("/_sim/cards", json={**card, "pin": "1"}), 400)
            listed = http.get("/_sim/cards").json()["cards"]
            if not any(c["number"] == card["number"] and c["securityCode"] == "4321" for c in listed):
                raise Failed("added card not listed")
            expect(http.post("/_sim/reset"), 204)
            if any(c["number"] == card["number"] for c in http.get("/_sim/cards").json()["cards"]):
                raise Failed("reset kept an added card")

        for name, fn in [
            ("checkBalance: USD, JPY, KWD seed cards", check_balance_ok),
            ("HTTP Basic auth", basic_auth),
            ("401 without or with a wrong key (before routing)", auth_errors),
            ("refusals: card, PIN, brand, blocked, not activated, amount, NotEnoughBalance", refusals),
            ("issue -> load -> voidTransaction (load, issue)", issue_load_void),
            ("changeStatus: activate, preload, void, deactivate (permanent)", change_status),
            ("validation errors (403 901, 130, 29_001, 702, 905, 101, 158, 137, 138, 100, 167, 906, 415)", validation),
            ("404 unknown path, 405 wrong method and OPTIONS, 413", routing_errors),
            ("Idempotency-Key replay, 704 on another body, 702 on a long key", idempotency),
            ("status faults in Adyen's error shape (429, 500, 401)", provider_faults),
            ("POST/GET /_sim/cards, reset", sim_cards),
        ]:
            run.check(name, fn)
        check_sim_controls(run, http, lambda: call("/checkBalance", req(usd, "41093")), "x-api-key")
        http.post("/_sim/reset")
        check_quiet(run, label, "adyen simulator", stop, secrets)
    Path(basic_file.name).unlink()
    return run


# --- Square --------------------------------------------------------------------------------------


def run_square() -> Runner:
    run = Runner("square")
    token = (ROOT / "simulators/square/square.token").read_text().strip()
    print("square:")
    with simulator("simulators.square") as (label, url, stop):
        http = httpx.Client(base_url=url, timeout=10)
        h = {"Authorization": f"Bearer {token}", "Square-Version": "2025-08-20"}
        location = "LSIMMAIN00001"
        http.post("/_sim/reset").raise_for_status()
        secrets = {c["gan"] for c in http.get("/_sim/cards").json()["cards"]}
        counter = iter(range(10**6))

        def post(path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
            return http.post(path, json=body, headers=h if headers is None else headers)

        def activity(key: str | None = None, **fields: Any) -> httpx.Response:
            body = {"type": "ACTIVATE", "location_id": location, **fields}
            return post(
                "/v2/gift-cards/activities",
                {"idempotency_key": key or f"a-{next(counter)}", "gift_card_activity": body},
            )

        def error(response: httpx.Response, status: int, code: str, field: str | None = None) -> None:
            body = expect(response, status)
            entry = body["errors"][0]
            if entry["code"] != code or (field is not None and entry.get("field") != field):
                raise Failed(f"expected {status} {code} {field}, got {body}")
            if set(entry) - {"category", "code", "detail", "field"}:
                raise Failed(f"unexpected error keys {entry}")

        fund = {"amount_money": {"amount": 1000, "currency": "USD"}, "buyer_payment_instrument_ids": ["pi-1"]}

        def from_gan() -> None:
            response = post("/v2/gift-cards/from-gan", {"gan": "7783320000001111"})
            expect(
                response,
                200,
                {
                    "gift_card": {
                        "type": "DIGITAL",
                        "gan_source": "SQUARE",
                        "state": "ACTIVE",
                        "balance_money": {"amount": 5000, "currency": "USD"},
                        "gan": "7783320000001111",
                    }
                },
            )
            card = response.json()["gift_card"]
            if not re.fullmatch(r"gftc:[0-9a-f]{32}", card["id"]) or not card["created_at"].endswith("Z"):
                raise Failed(f"gift card {card}")
            if response.headers.get("square-version") != "2025-08-20":
                raise Failed("Square-Version not echoed")
            expect(http.get(f"/v2/gift-cards/{card['id']}", headers=h), 200, {"gift_card": {"id": card["id"]}})
            error(post("/v2/gift-cards/from-gan", {"gan": "0000000000000000"}), 404, "NOT_FOUND")
            error(http.get("/v2/gift-cards/gftc:unknown", headers=h), 404, "NOT_FOUND")

        def auth_and_version() -> None:
            body = {"gan": "7783320000001111"}
            error(post("/v2/gift-cards/from-gan", body, {"Square-Version": "2025-08-20"}), 401, "UNAUTHORIZED")
            bad = {"Authorization": "Bearer nope", "Square-Version": "2025-08-20"}
            error(post("/v2/gift-cards/from-gan", body, bad), 401, "UNAUTHORIZED")
            basic = {"Authorization": f"Basic {token}", "Square-Version": "2025-08-20"}
            error(post("/v2/gift-cards/from-gan", body, basic), 401, "UNAUTHORIZED")
            auth = {"Authorization": h["Authorization"]}
            error(post("/v2/gift-cards/from-gan", body, auth), 400, "MISSING_REQUIRED_PARAMETER", "Square-Version")
            error(
                post("/v2/gift-cards/from-gan", body, {**auth, "Square-Version": "20250820"}),
                400,
                "INVALID_SQUARE_VERSION_FORMAT",
            )
            error(post("/v2/gift-cards/from-gan", body, {**auth, "Square-Version": "2019-01-01"}), 400, "BAD_REQUEST")
            error(post("/v2/unknown", body, {"Square-Version": "2025-08-20"}), 401, "UNAUTHORIZED")  # before routing

        def create_cards() -> None:
            created = expect(
                post(
                    "/v2/gift-cards",
                    {"idempotency_key": "c-1", "location_id": location, "gift_card": {"type": "DIGITAL"}},
                ),
                200,
                {
                    "gift_card": {
                        "type": "DIGITAL",
                        "gan_source": "SQUARE",
                        "state": "PENDING",
                        "balance_money": {"amount": 0, "currency": "USD"},
                    }
                },
            )
            gan = created["gift_card"]["gan"]
            secrets.add(gan)
            if not re.fullmatch(r"\d{16}", gan):
                raise Failed(f"generated GAN {gan!r}")
            custom = {"type": "PHYSICAL", "gan_source": "OTHER", "gan": "STORE0000042"}
            expect(
                post("/v2/gift-cards", {"idempotency_key": "c-2", "location_id": location, "gift_card": custom}),
                200,
                {"gift_card": {"gan": "STORE0000042", "gan_source": "OTHER", "state": "PENDING"}},
            )
            plastic = {"type": "PHYSICAL", "gan": "7783320000009902"}
            expect(
                post("/v2/gift-cards", {"idempotency_key": "c-3", "location_id": location, "gift_card": plastic}),
                200,
                {"gift_card": {"gan": "7783320000009902", "gan_source": "SQUARE"}},
            )

            def create(key: str, card: dict[str, Any], loc: str = location) -> httpx.Response:
                return post("/v2/gift-cards", {"idempotency_key": key, "location_id": loc, "gift_card": card})

            error(create("c-4", {**custom, "gan": "STORE0000042"}), 409, "CONFLICT", "gift_card.gan")
            error(create("c-5", {**custom, "gan": "SHORT"}), 400, "VALUE_REGEX_MISMATCH", "gift_card.gan")
            error(create("c-6", {**custom, "gan": "has-dashes-1"}), 400, "VALUE_REGEX_MISMATCH", "gift_card.gan")
            error(create("c-7", {"type": "PHYSICAL"}), 400, "MISSING_REQUIRED_PARAMETER", "gift_card.gan")
            error(create("c-8", {"type": "PHYSICAL", "gan_source": "OTHER"}), 400, "MISSING_REQUIRED_PARAMETER")
            error(create("c-9", {"type": "PHYSICAL", "gan": "1111222233334444"}), 400, "INVALID_VALUE", "gift_card.gan")
            error(create("c-10", {"type": "DIGITAL", "gan": "7783320000009903"}), 400, "INVALID_VALUE", "gift_card.gan")
            error(create("c-11", {"type": "GIFT"}), 400, "INVALID_ENUM_VALUE", "gift_card.type")
            error(create("c-12", {"type": "DIGITAL", "state": "ACTIVE"}), 400, "BAD_REQUEST", "gift_card.state")
            error(create("c-13", {"type": "DIGITAL"}, "LUNKNOWN00000"), 404, "NOT_FOUND", "location_id")
            error(
                post("/v2/gift-cards", {"location_id": location, "gift_card": {"type": "DIGITAL"}}),
                400,
                "MISSING_REQUIRED_PARAMETER",
                "idempotency_key",
            )
            error(create("", {"type": "DIGITAL"}), 400, "VALUE_TOO_SHORT", "idempotency_key")
            error(create("k" * 129, {"type": "DIGITAL"}), 400, "VALUE_TOO_LONG", "idempotency_key")

        def lifecycle() -> None:
            gan = "7783320000005551"
            activated = activity(gift_card_gan=gan, activate_activity_details={**fund, "reference_id": "order-1"})
            body = expect(
                activated,
                200,
                {
                    "gift_card_activity": {
                        "type": "ACTIVATE",
                        "gift_card_gan": gan,
                        "location_id": location,
                        "gift_card_balance_money": {"amount": 1000, "currency": "USD"},
                        "activate_activity_details": {"reference_id": "order-1"},
                    }
                },
            )
            card_id = body["gift_card_activity"]["gift_card_id"]
            if not re.fullmatch(r"gcact_[0-9a-f]{32}", body["gift_card_activity"]["id"]):
                raise Failed("activity id format")
            error(activity(gift_card_id=card_id, activate_activity_details=fund), 400, "BAD_REQUEST")
            expect(
                activity(type="LOAD", gift_card_id=card_id, load_activity_details=fund),
                200,
                {"gift_card_activity": {"gift_card_balance_money": {"amount": 2000}}},
            )
            expect(
                activity(
                    type="REDEEM",
                    gift_card_gan=gan,
                    redeem_activity_details={"amount_money": {"amount": 500, "currency": "USD"}},
                ),
                200,
                {"gift_card_activity": {"gift_card_balance_money": {"amount": 1500}}},
            )
            error(
                activity(
                    type="REDEEM",
                    gift_card_gan=gan,
                    redeem_activity_details={"amount_money": {"amount": 99999, "currency": "USD"}},
                ),
                400,
                "INSUFFICIENT_FUNDS",
            )
            expect(
                activity(
                    type="DEACTIVATE", gift_card_gan=gan, deactivate_activity_details={"reason": "SUSPICIOUS_ACTIVITY"}
                ),
                200,
                {"gift_card_activity": {"type": "DEACTIVATE"}},
            )
            expect(post("/v2/gift-cards/from-gan", {"gan": gan}), 200, {"gift_card": {"state": "DEACTIVATED"}})
            error(activity(type="LOAD", gift_card_gan=gan, load_activity_details=fund), 400, "BAD_REQUEST")
            error(
                activity(
                    type="DEACTIVATE", gift_card_gan=gan, deactivate_activity_details={"reason": "UNKNOWN_REASON"}
                ),
                400,
                "BAD_REQUEST",
            )
            error(
                activity(type="LOAD", gift_card_gan="7783320000004444", load_activity_details=fund), 400, "BAD_REQUEST"
            )
            expect(
                activity(
                    type="CLEAR_BALANCE",
                    gift_card_gan="GIFTCARD2024XYZ",
                    clear_balance_activity_details={"reason": "REUSE_GIFTCARD"},
                ),
                200,
                {"gift_card_activity": {"gift_card_balance_money": {"amount": 0}}},
            )

        def activity_errors() -> None:
            pending = "7783320000005552"
            details = "gift_card_activity.activate_activity_details"
            error(
                activity(
                    gift_card_gan=pending,
                    activate_activity_details={**fund, "amount_money": {"amount": 10.5, "currency": "USD"}},
                ),
                400,
                "EXPECTED_INTEGER",
                f"{details}.amount_money.amount",
            )
            error(
                activity(
                    gift_card_gan=pending,
                    activate_activity_details={**fund, "amount_money": {"amount": "1000", "currency": "USD"}},
                ),
                400,
                "EXPECTED_INTEGER",
                f"{details}.amount_money.amount",
            )
            error(
                activity(
                    gift_card_gan=pending,
                    activate_activity_details={**fund, "amount_money": {"amount": 0, "currency": "USD"}},
                ),
                400,
                "VALUE_TOO_LOW",
                f"{details}.amount_money.amount",
            )
            error(
                activity(
                    gift_card_gan=pending,
                    activate_activity_details={**fund, "amount_money": {"amount": 100, "currency": "EUR"}},
                ),
                400,
                "CURRENCY_MISMATCH",
            )
            error(
                activity(
                    gift_card_gan=pending,
                    activate_activity_details={**fund, "amount_money": {"amount": 100, "currency": "ABC"}},
                ),
                400,
                "INVALID_ENUM_VALUE",
                f"{details}.amount_money.currency",
            )
            error(
                activity(gift_card_gan=pending, activate_activity_details={**fund, "amount_money": {"amount": 100}}),
                400,
                "MISSING_REQUIRED_PARAMETER",
                f"{details}.amount_money.currency",
            )
            error(
                activity(gift_card_gan=pending, activate_activity_details={"amount_money": fund["amount_money"]}),
                400,
                "MISSING_REQUIRED_PARAMETER",
                f"{details}.buyer_payment_instrument_ids",
            )
            error(
                activity(gift_card_gan=pending, activate_activity_details={**fund, "amount": 5}),
                400,
                "BAD_REQUEST",
                f"{details}.amount",
            )
            error(
                activity(
                    gift_card_gan=pending, activate_activity_details={**fund, "order_id": "o-1", "line_item_uid": "l"}
                ),
                400,
                "BAD_REQUEST",
            )
            error(activity(gift_card_gan=pending), 400, "MISSING_REQUIRED_PARAMETER", details)
            error(
                activity(gift_card_gan=pending, activate_activity_details=fund, load_activity_details=fund),
                400,
                "CONFLICTING_PARAMETERS",
            )
            error(activity(activate_activity_details=fund), 400, "MISSING_REQUIRED_PARAMETER")
            error(activity(gift_card_gan="0000000000000000", activate_activity_details=fund), 404, "NOT_FOUND")
            error(
                activity(gift_card_gan=pending, location_id="LUNKNOWN00000", activate_activity_details=fund),
                404,
                "NOT_FOUND",
                "gift_card_activity.location_id",
            )
            error(activity(type="BLOCK", gift_card_gan=pending), 400, "INVALID_VALUE", "gift_card_activity.type")
            error(
                activity(type="ADJUST_INCREMENT", gift_card_gan=pending), 400, "BAD_REQUEST", "gift_card_activity.type"
            )
            error(activity(type="TOP_UP", gift_card_gan=pending), 400, "INVALID_ENUM_VALUE", "gift_card_activity.type")
            error(
                activity(type="DEACTIVATE", gift_card_gan=pending, deactivate_activity_details={"reason": "BORED"}),
                400,
                "INVALID_ENUM_VALUE",
                "gift_card_activity.deactivate_activity_details.reason",
            )
            error(
                post("/v2/gift-cards/activities", {"idempotency_key": "x"}),
                400,
                "MISSING_REQUIRED_PARAMETER",
                "gift_card_activity",
            )

        def body_errors() -> None:
            error(post("/v2/gift-cards/from-gan", {"gan": 7783320000001111}), 400, "EXPECTED_STRING", "gan")
            error(post("/v2/gift-cards/from-gan", {"gan": ""}), 400, "VALUE_TOO_SHORT", "gan")
            error(post("/v2/gift-cards/from-gan", {}), 400, "MISSING_REQUIRED_PARAMETER", "gan")
            error(post("/v2/gift-cards/from-gan", {"gan": "1", "pin": "1234"}), 400, "BAD_REQUEST", "pin")
            json_h = {**h, "Content-Type": "application/json"}
            error(http.post("/v2/gift-cards/from-gan", content=b'{"gan":', headers=json_h), 400, "EXPECTED_JSON_BODY")
            error(http.post("/v2/gift-cards/from-gan", content=b"", headers=json_h), 400, "EXPECTED_JSON_BODY")
            error(http.post("/v2/gift-cards/from-gan", content=b'["x"]', headers=json_h), 400, "EXPECTED_JSON_BODY")
            error(http.post("/v2/gift-cards/from-gan", content=b'{"gan":"1"}', headers=h), 400, "INVALID_CONTENT_TYPE")

        def routing_errors() -> None:
            error(post("/v2/gift-cards/nope/more", {}), 404, "NOT_FOUND")
            error(http.delete("/v2/gift-cards", headers=h), 405, "METHOD_NOT_ALLOWED")
            error(http.request("OPTIONS", "/v2/gift-cards", headers=h), 405, "METHOD_NOT_ALLOWED")
            big = {**h, "Content-Type": "application/json"}
            error(
                http.post("/v2/gift-cards", content=b" " * (1024 * 1024 + 1), headers=big),
                413,
                "REQUEST_ENTITY_TOO_LARGE",
            )

        def idempotency() -> None:
            body = {"idempotency_key": "same-key", "location_id": location, "gift_card": {"type": "DIGITAL"}}
            first = post("/v2/gift-cards", body)
            expect(first, 200)
            secrets.add(first.json()["gift_card"]["gan"])
            reordered = (
                b'{"gift_card": {"type": "DIGITAL"}, "location_id": "LSIMMAIN00001", "idempotency_key": "same-key"}'
            )
            again = http.post("/v2/gift-cards", content=reordered, headers={**h, "Content-Type": "application/json"})
            if again.status_code != 200 or again.content != first.content:
                raise Failed("same key and body was not replayed byte for byte")
            error(
                post("/v2/gift-cards", {**body, "location_id": "LSIMSTORE0002"}),
                400,
                "IDEMPOTENCY_KEY_REUSED",
                "idempotency_key",
            )
            error(
                activity("same-key", gift_card_gan="7783320000005553", activate_activity_details=fund),
                400,
                "IDEMPOTENCY_KEY_REUSED",
            )
            # Validation failures are not stored: the key stays usable once the request is fixed.
            error(
                activity(
                    "fix-me",
                    gift_card_gan="7783320000005553",
                    activate_activity_details={"amount_money": fund["amount_money"]},
                ),
                400,
                "MISSING_REQUIRED_PARAMETER",
            )
            ok = activity("fix-me", gift_card_gan="7783320000005553", activate_activity_details=fund)
            expect(ok, 200)
            replay = activity("fix-me", gift_card_gan="7783320000005553", activate_activity_details=fund)
            if replay.content != ok.content:
                raise Failed("activity not replayed")

        def provider_faults() -> None:
            for status, code, category in [
                (429, "RATE_LIMITED", "RATE_LIMIT_ERROR"),
                (500, "INTERNAL_SERVER_ERROR", "API_ERROR"),
                (503, "SERVICE_UNAVAILABLE", "API_ERROR"),
            ]:
                http.post("/_sim/faults", json={"mode": "status", "status": status}).raise_for_status()
                response = post("/v2/gift-cards/from-gan", {"gan": "7783320000001111"})
                error(response, status, code)
                if response.json()["errors"][0]["category"] != category:
                    raise Failed(f"{status}: category {response.json()}")

        def sim_cards() -> None:
            card = {"gan": "SIMCARD12345", "state": "ACTIVE", "amount": 4200, "type": "PHYSICAL", "gan_source": "OTHER"}
            secrets.add(card["gan"])
            expect(
                http.post("/_sim/cards", json=card),
                201,
                {
                    "card": {
                        "gan": "SIMCARD12345",
                        "state": "ACTIVE",
                        "balance_money": {"amount": 4200, "currency": "USD"},
                    }
                },
            )
            expect(
                post("/v2/gift-cards/from-gan", {"gan": "SIMCARD12345"}), 200, {"gift_card": {"gan_source": "OTHER"}}
            )
            expect(http.post("/_sim/cards", json={**card, "amount": 1.5}), 400, {"error": {"code": "invalid_request"}})
            expect(http.post("/_sim/cards", json={**card, "state": "GONE"}), 400)
            expect(http.post("/_sim/reset"), 204)
            error(post("/v2/gift-cards/from-gan", {"gan": "SIMCARD12345"}), 404, "NOT_FOUND")
            expect(
                post("/v2/gift-cards/from-gan", {"gan": "7783320000005551"}), 200, {"gift_card": {"state": "PENDING"}}
            )

        for name, fn in [
            ("from-gan and retrieve by id, 404", from_gan),
            ("401 (missing, wrong, not Bearer), Square-Version missing/malformed/unknown", auth_and_version),
            ("create: DIGITAL, custom GAN, plastic registration, and every rejection", create_cards),
            ("activities: ACTIVATE, LOAD, REDEEM, DEACTIVATE, CLEAR_BALANCE and state errors", lifecycle),
            ("activity validation (types, enums, money, required fields, conflicts)", activity_errors),
            ("body errors (wrong types, unknown field, malformed, content type)", body_errors),
            ("404 unknown path, 405 wrong method and OPTIONS, 413", routing_errors),
            ("idempotency_key replay, IDEMPOTENCY_KEY_REUSED, failed requests not stored", idempotency),
            ("status faults in Square's error shape (429, 500, 503)", provider_faults),
            ("POST/GET /_sim/cards, reset", sim_cards),
        ]:
            run.check(name, fn)
        check_sim_controls(
            run, http, lambda: post("/v2/gift-cards/from-gan", {"gan": "7783320000001111"}), "authorization"
        )
        http.post("/_sim/reset")
        check_quiet(run, label, "square simulator", stop, secrets)
    return run


# --- Sandbox (the suite under tests/ covers it fully; this only checks it still starts the same) ---


def run_sandbox() -> Runner:
    run = Runner("sandbox")
    key = (ROOT / "simulators/sandbox/sandbox.key").read_text().strip()
    print("sandbox:")
    with simulator("simulators.sandbox") as (label, url, stop):
        http = httpx.Client(base_url=url, timeout=10)
        h = {"X-Api-Key": key}
        seeded = http.get("/_sim/cards").json()["cards"]
        secrets = {c["number"] for c in seeded} | {c["pin"] for c in seeded if c["pin"]}

        def lookup() -> None:
            body = {"number": "6006491111111111", "pin": "480163"}
            expect(http.post("/v1/cards/lookup", json=body, headers=h), 200, {"result": "ok"})
            expect(http.post("/v1/cards/lookup", json=body), 401, {"error": {"code": "unauthorized"}})
            expect(http.post("/v2/anything", json=body), 404, {"error": {"code": "not_found"}})

        run.check("lookup, 401, paths outside /v1 are not API", lookup)
        check_sim_controls(
            run, http, lambda: http.post("/v1/cards/lookup", json={"number": "1"}, headers=h), "x-api-key", "/v1/nope"
        )
        check_quiet(run, label, "sandbox provider", stop, secrets)
    return run


RUNS = {"adyen": run_adyen, "square": run_square, "sandbox": run_sandbox}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(RUNS)
    unknown = [name for name in names if name not in RUNS]
    if unknown:
        print(f"unknown simulator(s): {', '.join(unknown)}; choose from {', '.join(RUNS)}", file=sys.stderr)
        return 2
    runs = [RUNS[name]() for name in names]
    failures = [failure for run in runs for failure in run.failed]
    passed = sum(run.passed for run in runs)
    for failure in failures:
        print(f"FAILED {failure}")
    print(f"{passed} checks passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
