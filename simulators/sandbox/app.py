"""Routes of the sandbox provider: the ``/v1`` card and hold API, plus ``GET /_sim/holds``; the gate
and the other ``/_sim`` test controls come from :mod:`simulators.simkit`."""

from __future__ import annotations

import hmac
from typing import Any, Callable, TypeVar

import msgspec
from litestar import Litestar, Request, Response, get, post

from simulators.simkit import (
    MAX_BODY_BYTES,
    ApiRequest,
    Dialect,
    IdempotencyKeyReused,
    Reply,
    SimError,
    StoredResponse,
    create_sim_app,
    decode_neutral,
    json_value,
    neutral_reply,
)

from .schemas import (
    ActivateRequest,
    CaptureRequest,
    DeactivateRequest,
    HoldRequest,
    IssueRequest,
    LookupRequest,
    RefundRequest,
    ReleaseRequest,
)
from .state import Outcome, Simulator

Body = TypeVar("Body", bound=msgspec.Struct)

API_PREFIX = "/v1"
IDEMPOTENCY_KEY_MAX = 64

# A protocol error: the request is rejected before any business logic runs, so it is never stored
# for replay. The sandbox speaks the kit's neutral error format everywhere.
ApiError = SimError


class SandboxDialect(Dialect):
    """The kit's neutral error format, plus the ``X-Api-Key`` check."""

    def __init__(self, api_key: str) -> None:
        self._key = api_key.encode()

    def check(self, request: ApiRequest) -> Reply | None:
        given = request.first("x-api-key") or b""
        if not hmac.compare_digest(given, self._key):
            return neutral_reply(401, "unauthorized", "missing or invalid X-Api-Key")
        return None


def _json(status: int, content: bytes, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def _decode(request: Request[Any, Any, Any], raw: bytes, schema: type[Body]) -> Body:
    return decode_neutral(request.headers.get("content-type"), raw, schema)


def _idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        raise ApiError(400, "invalid_request", f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    return key


async def _run_idempotent(
    request: Request[Any, Any, Any], sim: Simulator, schema: type[Body], operation: Callable[[Body], Outcome]
) -> Response[bytes]:
    key = _idempotency_key(request)
    raw = await request.body()
    body = _decode(request, raw, schema)
    # Compare bodies as JSON values, so key order and whitespace differences still count as "the same request".
    fingerprint = json_value(raw)
    method, path = request.method, request.url.path

    async with sim.lock:
        if key is not None:
            try:
                stored = sim.stored_response(key, method, path, fingerprint)
            except IdempotencyKeyReused:
                raise ApiError(
                    422, "idempotency_key_reused", "this Idempotency-Key was already used for a different request"
                ) from None
            if stored is not None:
                return _json(stored.status, stored.content, {"Idempotent-Replayed": "true"})
        outcome = operation(body)
        content = msgspec.json.encode(outcome.payload)
        if key is not None:
            sim.idempotency[key] = StoredResponse(method, path, fingerprint, outcome.status, content)
    return _json(outcome.status, content)


# --- /v1: the provider API ------------------------------------------------------------------


@post("/v1/cards/lookup")
async def lookup_card(request: Request[Any, Any, Any], sim: Simulator) -> Response[bytes]:
    body = _decode(request, await request.body(), LookupRequest)
    async with sim.lock:
        outcome = sim.lookup(body.number, body.pin)
    return _json(outcome.status, msgspec.json.encode(outcome.payload))


@post("/v1/cards")
async def issue_card(request: Request[Any, Any, Any], sim: Simulator) -> Response[bytes]:
    return await _run_idempotent(
        request, sim, IssueRequest, lambda b: sim.issue(b.amount_minor, b.currency, b.customer_ref)
    )


@post("/v1/cards/{number:str}/activate")
async def activate_card(request: Request[Any, Any, Any], sim: Simulator, number: str) -> Response[bytes]:
    return await _run_idempotent(
        request, sim, ActivateRequest, lambda b: sim.activate(number, b.amount_minor, b.currency, b.customer_ref)
    )


@post("/v1/cards/{number:str}/deactivate")
async def deactivate_card(request: Request[Any, Any, Any], sim: Simulator, number: str) -> Response[bytes]:
    return await _run_idempotent(request, sim, DeactivateRequest, lambda b: sim.deactivate(number, b.pin))


@post("/v1/holds")
async def create_hold(request: Request[Any, Any, Any], sim: Simulator) -> Response[bytes]:
    return await _run_idempotent(
        request, sim, HoldRequest, lambda b: sim.hold(b.number, b.pin, b.amount_minor, b.currency, b.reference)
    )


@post("/v1/holds/{hold_id:str}/capture")
async def capture_hold(request: Request[Any, Any, Any], sim: Simulator, hold_id: str) -> Response[bytes]:
    return await _run_idempotent(request, sim, CaptureRequest, lambda b: sim.capture(hold_id, b.amount_minor))


@post("/v1/holds/{hold_id:str}/release")
async def release_hold(request: Request[Any, Any, Any], sim: Simulator, hold_id: str) -> Response[bytes]:
    return await _run_idempotent(request, sim, ReleaseRequest, lambda _: sim.release(hold_id))


@post("/v1/holds/{hold_id:str}/refund")
async def refund_hold(request: Request[Any, Any, Any], sim: Simulator, hold_id: str) -> Response[bytes]:
    return await _run_idempotent(request, sim, RefundRequest, lambda b: sim.refund(hold_id, b.amount_minor))


# --- /_sim: the sandbox's own test control -----------------------------------------------------


@get("/_sim/holds")
async def sim_list_holds(sim: Simulator) -> dict[str, Any]:
    return {"holds": sim.hold_views()}


# --- app -------------------------------------------------------------------------------------


def create_app(api_key: str) -> Litestar:
    """A fresh provider with its own cards, so apps created side by side never share state."""
    if not api_key:
        raise ValueError("api_key must not be empty")
    return create_sim_app(
        core=Simulator(),
        dialect=SandboxDialect(api_key),
        route_handlers=[
            lookup_card,
            issue_card,
            activate_card,
            deactivate_card,
            create_hold,
            capture_hold,
            release_hold,
            refund_hold,
            sim_list_holds,
        ],
        logger_name="simulators.sandbox",
        api_paths=API_PREFIX,
        masked_headers=("x-api-key",),
        max_body_bytes=MAX_BODY_BYTES,
    )
