"""Routes of the sandbox provider: the ``/v1`` card API and the ``/_sim`` test controls."""

from __future__ import annotations

import logging
import traceback
from typing import Any, Callable, TypeVar

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.types import Receive, Scope, Send

from .gate import MAX_BODY_BYTES, ApiGate, error_body, is_api_path
from .schemas import (
    ActivateRequest,
    DeactivateRequest,
    FaultRequest,
    IssueRequest,
    LookupRequest,
    SimCardRequest,
)
from .state import Card, Fault, Outcome, Simulator, StoredResponse

logger = logging.getLogger("examples.sandbox")

Body = TypeVar("Body", bound=msgspec.Struct)

IDEMPOTENCY_KEY_MAX = 64


class ApiError(Exception):
    """A protocol error: the request is rejected before any business logic runs, so it is never stored for replay."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(status: int, content: bytes, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def _decode(request: Request[Any, Any, Any], raw: bytes, schema: type[Body]) -> Body:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if raw and media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "request bodies must be sent as Content-Type: application/json")
    if not raw:
        raise ApiError(400, "invalid_request", "a JSON request body is required")
    try:
        return msgspec.json.decode(raw, type=schema, strict=True)
    except msgspec.DecodeError as exc:  # also covers msgspec.ValidationError
        raise ApiError(400, "invalid_request", str(exc)) from None


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
    fingerprint = msgspec.json.decode(raw)
    method, path = request.method, request.url.path

    async with sim.lock:
        stored = sim.idempotency.get(key) if key is not None else None
        if stored is not None:
            if (stored.method, stored.path, stored.body) != (method, path, fingerprint):
                raise ApiError(
                    422, "idempotency_key_reused", "this Idempotency-Key was already used for a different request"
                )
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


# --- /_sim: test controls (no auth, never recorded) ---------------------------------------------


@get("/_sim/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/_sim/calls")
async def list_calls(sim: Simulator) -> dict[str, Any]:
    return {"calls": sim.calls}


@delete("/_sim/calls")
async def clear_calls(sim: Simulator) -> None:
    sim.calls.clear()


@post("/_sim/faults")
async def queue_fault(request: Request[Any, Any, Any], sim: Simulator) -> dict[str, Any]:
    body = _decode(request, await request.body(), FaultRequest)
    sim.faults.append(Fault(body.mode, body.times, body.seconds or 0.0, body.status or 0))
    return {"faults": [fault.describe() for fault in sim.faults]}


@delete("/_sim/faults")
async def clear_faults(sim: Simulator) -> None:
    sim.faults.clear()


@post("/_sim/reset", status_code=204)
async def reset(sim: Simulator) -> None:
    async with sim.lock:
        sim.reset()


@get("/_sim/cards")
async def list_cards(sim: Simulator) -> dict[str, Any]:
    return {"cards": [card.view(with_pin=True) for card in sim.cards.values()]}


@post("/_sim/cards")
async def put_card(request: Request[Any, Any, Any], sim: Simulator) -> dict[str, Any]:
    body = _decode(request, await request.body(), SimCardRequest)
    card = Card(
        number=body.number,
        pin=body.pin,
        state=body.state,
        balance_minor=body.amount_minor,
        currency=body.currency,
        customer_ref=body.customer_ref,
    )
    if card.state == "deactivated":
        card.deactivated_at = card.created_at
    async with sim.lock:
        sim.put_card(card)
    return {"card": card.view(with_pin=True)}


# --- errors ----------------------------------------------------------------------------------

_HTTP_ERROR_CODES = {
    400: ("invalid_request", None),
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "method not allowed for this endpoint"),
    413: ("payload_too_large", None),
}


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return _json(exc.status, error_body(exc.code, exc.message))


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    code, message = _HTTP_ERROR_CODES.get(exc.status_code, ("http_error", None))
    return _json(exc.status_code, error_body(code, message or exc.detail))


def _unexpected_error(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # Only the exception type and code locations: messages, paths and even source lines (the seed
    # table) may carry card numbers or PINs.
    frames = "".join(f"  {f.filename}:{f.lineno} in {f.name}\n" for f in traceback.extract_tb(exc.__traceback__))
    logger.error("internal error %s\n%s", type(exc).__name__, frames)
    return _json(500, error_body("internal_error", "internal error"))


# --- app -------------------------------------------------------------------------------------


class SandboxApp(Litestar):
    """Litestar with the ``/v1`` gate wrapped around its router (see ``gate.py`` for why)."""

    gate: ApiGate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] == "http" and is_api_path(scope["path"]):
            await self.gate(scope, receive, send, super().__call__)
        else:
            await super().__call__(scope, receive, send)


def create_app(api_key: str) -> Litestar:
    """A fresh provider with its own cards, so apps created side by side never share state."""
    if not api_key:
        raise ValueError("api_key must not be empty")
    sim = Simulator()
    app = SandboxApp(
        route_handlers=[
            lookup_card,
            issue_card,
            activate_card,
            deactivate_card,
            health,
            list_calls,
            clear_calls,
            queue_fault,
            clear_faults,
            reset,
            list_cards,
            put_card,
        ],
        dependencies={"sim": Provide(lambda: sim, sync_to_thread=False)},
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _unexpected_error},
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        # No Litestar logging: its exception logs include request paths, which contain card numbers.
        logging_config=None,
        debug=False,
    )
    app.gate = ApiGate(sim, api_key)
    app.state.simulator = sim
    return app
