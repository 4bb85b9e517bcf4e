"""The Litestar app: ``POST /{provider}/gift_card/{operation}`` for every configured provider.

The path of one webhook reads top to bottom in :func:`_handle`::

    route -> inbound auth -> operation -> content type -> decode/validate
          -> run the mapping's steps (engine) under the webhook deadline -> respond

Every failure becomes the spec's Error body with the status its class carries; nothing leaves
as a bare 500. Upstream clients are created at startup from the plan and closed at shutdown.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException

from . import contract, inbound, logs
from .engine import RunState, run_operation
from .errors import (
    DeadlineExceeded,
    InternalError,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestRejected,
    RouteNotFound,
    WebhookError,
)
from .plan import GatewayPlan
from .upstream.client import TransportFactory, Upstream

_JSON = "application/json"


def create_app(plan: GatewayPlan, *, transport_factory: TransportFactory | None = None) -> Litestar:
    """Build the app from a compiled plan; ``transport_factory`` is the network seam for tests."""
    upstreams: dict[str, Upstream] = {}

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        for name, provider in plan.providers.items():
            transport = transport_factory(provider) if transport_factory else None
            upstreams[name] = Upstream(provider, transport)
        try:
            yield
        finally:
            await asyncio.gather(*(u.aclose() for u in upstreams.values()))
            upstreams.clear()

    @post("/{provider:str}/gift_card/{operation:str}", status_code=200)
    async def webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
        params = request.path_params
        return await _handle(plan, upstreams, request, params["provider"], params["operation"])

    @get("/health")
    async def health() -> Response[bytes]:
        body = {"status": "ok", "providers": sorted(plan.providers)}
        return Response(msgspec.json.encode(body), media_type=_JSON)

    return Litestar(
        route_handlers=[webhook, health],
        lifespan=[lifespan],
        exception_handlers={Exception: _unhandled},
        request_max_body_size=plan.max_body_bytes,
        openapi_config=None,
        logging_config=None,
    )


async def _handle(plan: GatewayPlan, upstreams: dict[str, Upstream], request: Request[Any, Any, Any],
                  provider_name: str, operation: str) -> Response[bytes]:
    started = time.perf_counter()
    state = RunState()
    log: dict[str, Any] = {"provider": provider_name, "operation": operation}
    try:
        provider = plan.providers.get(provider_name)
        if provider is None:
            raise RequestRejected(f"unknown provider `{provider_name}`", error_code="unknown_provider")
        inbound.authenticate(provider, request.headers)
        if operation not in contract.OPERATIONS:
            raise RequestRejected(
                f"unknown operation `{operation}`; NewStore's gift card operations are: {', '.join(contract.OPERATIONS)}",
                error_code="unknown_operation",
            )
        op = provider.mapping.operations.get(operation)
        if op is None or op.unsupported is not None:
            reason = op.unsupported if op is not None else "the mapping does not map it"
            raise RequestRejected(f"provider `{provider_name}` does not support `{operation}`: {reason}",
                                  error_code="unsupported_operation")
        inbound.check_content_type(request.headers.get("content-type"))
        body = await _read_body(request)
        decoded = inbound.decode(operation, body)
        log["card"] = logs.mask_card(_card_number(decoded))
        try:
            async with asyncio.timeout(provider.deadline):
                result = await run_operation(provider, upstreams[provider_name], op, decoded, state)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the webhook did not finish within its {provider.deadline:g}s deadline"
                + (f" (in step `{state.step}`); the outcome is unknown" if state.step else ""),
                request_accepted=state.sent,
                details={"step": state.step} if state.step else None,
            ) from None
        status, content = 200, result.body
        log["outcome"] = "ok"
        if log["card"] is None:  # issue: the card number comes from the provider
            log["card"] = logs.mask_card(_card_number(result.response))
    except WebhookError as exc:
        status, content = exc.status, contract.encode(exc.body())
        log["outcome"] = _outcome(exc)
        log["error_code"] = exc.error_code
        if exc.status >= 500 or log["outcome"] == "mapping_error":
            log["message"] = exc.message
    log.update(status=status, calls=state.calls, duration_ms=round((time.perf_counter() - started) * 1000, 1))
    logs.webhook(**log)
    return Response(content, status_code=status, media_type=_JSON)


async def _read_body(request: Request[Any, Any, Any]) -> bytes:
    try:
        return await request.body()
    except HTTPException as exc:
        if exc.status_code == 413:
            raise PayloadTooLarge("the request body is larger than this gateway accepts") from None
        raise RequestRejected(f"the request body could not be read: {exc.detail}") from None


def _card_number(request: msgspec.Struct) -> str | None:
    identifier = getattr(request, "identifier", None)
    if identifier is not None:
        return identifier.number
    return getattr(request, "card_number", None)


def _outcome(exc: WebhookError) -> str:
    if exc.definitive:
        return "provider_rejected"
    if exc.error_code == "mapping_error":
        return "mapping_error"
    if exc.status >= 500:
        return "unknown"
    return "rejected"


def _unhandled(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar's own errors (unknown route, wrong method, oversize body) and bugs, as Error bodies."""
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            error: WebhookError = RouteNotFound(
                "no such route; NewStore calls POST /{provider}/gift_card/{balance|issue|activate|deactivate}")
        elif exc.status_code == 405:
            error = MethodNotAllowed("only POST is allowed on gift card webhooks")
        elif exc.status_code == 413:
            error = PayloadTooLarge("the request body is larger than this gateway accepts")
        else:
            error = RequestRejected(str(exc.detail), error_code="invalid_request")
            error.status = exc.status_code if 400 <= exc.status_code < 500 else 400
    else:
        # Where it failed, not what it said: an exception's message may quote request data.
        frames = traceback.extract_tb(exc.__traceback__)[-3:]
        where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))
        logs.logger.error("unhandled %s at %s", type(exc).__name__, where)
        error = InternalError("the gateway failed unexpectedly; the outcome is unknown", request_accepted=True)
    return Response(contract.encode(error.body()), status_code=error.status, media_type=_JSON)
