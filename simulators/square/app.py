"""Routes of the simulated Square Gift Cards / Gift Card Activities APIs, and Square's error dialect.

Every error is ``{"errors": [{"category", "code", "detail", "field"?}]}`` with the matching HTTP
status. Which request gives which error is listed in README.md.
"""

from __future__ import annotations

import hmac
import re
from typing import Any, Callable, Iterable, TypeVar

import msgspec
from litestar import Request, Response, get, post

from simulators.simkit import (
    CURRENCIES,
    MAX_BODY_BYTES,
    ApiRequest,
    Dialect,
    IdempotencyKeyReused,
    Problem,
    Reply,
    ReplyError,
    SimApp,
    StoredResponse,
    create_sim_app,
    decode_strict,
    explain,
    json_value,
    media_type,
)

from .schemas import (
    CreateGiftCardActivityRequest,
    CreateGiftCardRequest,
    Money,
    RetrieveFromGanRequest,
)
from .state import DETAIL_FIELDS, Outcome, SquareSimulator, validate_activity, validate_create

Body = TypeVar("Body", bound=msgspec.Struct)

DEFAULT_SQUARE_VERSIONS = ("2025-08-20",)
VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
# ISO 4217 codes accepted in Money; any other three letters is INVALID_ENUM_VALUE.

# Status -> (category, code, detail) for errors that never reach an endpoint (and for faults).
_HTTP_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("INVALID_REQUEST_ERROR", "BAD_REQUEST", "Bad Request - a general error occurred."),
    401: ("AUTHENTICATION_ERROR", "UNAUTHORIZED", "This request could not be authorized."),
    403: ("AUTHENTICATION_ERROR", "FORBIDDEN", "You are not allowed to do this."),
    404: ("INVALID_REQUEST_ERROR", "NOT_FOUND", "Resource not found."),
    405: ("INVALID_REQUEST_ERROR", "METHOD_NOT_ALLOWED", "Method Not Allowed - a general error occurred."),
    406: ("INVALID_REQUEST_ERROR", "NOT_ACCEPTABLE", "Not Acceptable - a general error occurred."),
    408: ("INVALID_REQUEST_ERROR", "REQUEST_TIMEOUT", "Request Timeout - a general error occurred."),
    409: ("INVALID_REQUEST_ERROR", "CONFLICT", "Conflict - a general error occurred."),
    410: ("INVALID_REQUEST_ERROR", "GONE", "The target resource is no longer available."),
    413: ("INVALID_REQUEST_ERROR", "REQUEST_ENTITY_TOO_LARGE", "Request Entity Too Large - a general error occurred."),
    415: ("INVALID_REQUEST_ERROR", "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type - a general error occurred."),
    422: ("INVALID_REQUEST_ERROR", "UNPROCESSABLE_ENTITY", "Unprocessable Entity - a general error occurred."),
    429: ("RATE_LIMIT_ERROR", "RATE_LIMITED", "Rate Limited - a general error occurred."),
    500: ("API_ERROR", "INTERNAL_SERVER_ERROR", "A general server error occurred."),
    501: ("API_ERROR", "NOT_IMPLEMENTED", "Not Implemented - a general error occurred."),
    502: ("API_ERROR", "BAD_GATEWAY", "Bad Gateway - a general error occurred."),
    503: ("API_ERROR", "SERVICE_UNAVAILABLE", "Service Unavailable - a general error occurred."),
    504: ("API_ERROR", "GATEWAY_TIMEOUT", "Gateway Timeout - a general error occurred."),
}


def errors_reply(
    status: int, category: str, code: str, detail: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Reply:
    entry: dict[str, Any] = {"category": category, "code": code, "detail": detail}
    if field is not None:
        entry["field"] = field
    return Reply.json(status, {"errors": [entry]}, headers)


def invalid_request(code: str, detail: str, field: str | None = None, status: int = 400) -> ReplyError:
    return ReplyError(errors_reply(status, "INVALID_REQUEST_ERROR", code, detail, field))


def _http_error(status: int) -> Reply:
    category, code, detail = _HTTP_ERRORS.get(
        status,
        ("API_ERROR", "INTERNAL_SERVER_ERROR", "A general server error occurred.")
        if status >= 500
        else ("INVALID_REQUEST_ERROR", "BAD_REQUEST", "Bad Request - a general error occurred."),
    )
    return errors_reply(status, category, code, detail)


class SquareDialect(Dialect):
    """Square's error shapes; ``Authorization: Bearer`` then ``Square-Version`` checked before routing."""

    def __init__(self, access_token: str, versions: Iterable[str]) -> None:
        self._token = access_token.encode()
        self.versions = frozenset(versions)

    def check(self, request: ApiRequest) -> Reply | None:
        authorization = request.header("authorization")
        if authorization is None:
            return errors_reply(
                401,
                "AUTHENTICATION_ERROR",
                "UNAUTHORIZED",
                "Your request did not include an `Authorization` http header with an access token. "
                'The header value is expected to be of the format "Bearer TOKEN".',
            )
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(token.strip().encode("latin-1"), self._token):
            return _http_error(401)
        version = request.header("square-version")
        if version is None:
            # Real Square falls back to the application's default version; this simulator insists
            # on an explicit one, so a gateway never depends on a dashboard setting.
            return errors_reply(
                400,
                "INVALID_REQUEST_ERROR",
                "MISSING_REQUIRED_PARAMETER",
                "The Square-Version header is required by this simulator.",
                "Square-Version",
            )
        if not VERSION_FORMAT.match(version):
            return errors_reply(
                400,
                "INVALID_REQUEST_ERROR",
                "INVALID_SQUARE_VERSION_FORMAT",
                f"Invalid Square-Version format: `{version}`. Expected YYYY-MM-DD.",
                "Square-Version",
            )
        if version not in self.versions:
            return errors_reply(
                400,
                "INVALID_REQUEST_ERROR",
                "BAD_REQUEST",
                f"Unsupported Square-Version: `{version}`.",
                "Square-Version",
            )
        return None

    def fault(self, status: int) -> Reply:
        return _http_error(status)

    def too_large(self, limit: int) -> Reply:
        return _http_error(413)

    def http_error(self, status: int, detail: str) -> Reply:
        return _http_error(status)

    def internal_error(self) -> Reply:
        return _http_error(500)


# --- request decoding and validation ------------------------------------------------------------

_EXPECTED = {
    "int": ("EXPECTED_INTEGER", "Expected an integer value."),
    "str": ("EXPECTED_STRING", "Expected a string value."),
    "object": ("EXPECTED_OBJECT", "Expected a JSON object."),
    "array": ("EXPECTED_ARRAY", "Expected an array."),
    "bool": ("EXPECTED_BOOLEAN", "Expected a boolean value."),
    "float": ("EXPECTED_FLOAT", "Expected a float value."),
}


def _problem_error(problem: Problem) -> ReplyError:
    field = problem.path or None
    if problem.kind == "syntax" or (problem.kind == "type" and not problem.path):
        return invalid_request("EXPECTED_JSON_BODY", f"The request body is not a JSON object: {problem.message}")
    if problem.kind == "missing":
        return invalid_request("MISSING_REQUIRED_PARAMETER", "Field must be set", field)
    if problem.kind == "unknown":
        return invalid_request("BAD_REQUEST", f"Unrecognized field `{problem.field}`.", field)
    if problem.kind == "type":
        expected = (problem.expected or "").split(" | ")[0]
        code, detail = _EXPECTED.get(expected, ("INVALID_VALUE", "The provided value is invalid."))
        return invalid_request(code, detail, field)
    if problem.kind == "range":
        code = "VALUE_TOO_LOW" if problem.op in (">=", ">") else "VALUE_TOO_HIGH"
        return invalid_request(code, f"Must be {problem.op} {problem.bound}.", field)
    if problem.kind == "length":
        if problem.op in (">=", ">"):
            return invalid_request("VALUE_TOO_SHORT", f"Must be at least {problem.bound} characters long.", field)
        return invalid_request("VALUE_TOO_LONG", f"Must be at most {problem.bound} characters long.", field)
    if problem.kind == "enum":
        return invalid_request(
            "INVALID_ENUM_VALUE", f"`{problem.value}` is not a valid enum value for `{problem.field}`.", field
        )
    if problem.kind == "pattern":
        return invalid_request("VALUE_REGEX_MISMATCH", "The value does not match the expected format.", field)
    return invalid_request("INVALID_VALUE", problem.message, field)


def _decode(request: Request[Any, Any, Any], raw: bytes, schema: type[Body]) -> Body:
    if media_type(request.headers.get("content-type")) != "application/json":
        raise invalid_request("INVALID_CONTENT_TYPE", "Content-Type must be application/json.")
    if not raw.strip():
        raise invalid_request("EXPECTED_JSON_BODY", "The request body is not a JSON object.")
    try:
        return decode_strict(raw, schema)
    except msgspec.DecodeError as exc:
        raise _problem_error(explain(exc)) from None


def _check_money(money: Money | None, field: str) -> None:
    if money is not None and money.currency not in CURRENCIES:
        raise invalid_request(
            "INVALID_ENUM_VALUE", f"`{money.currency}` is not a valid enum value for `currency`.", f"{field}.currency"
        )


def _reject(outcome: Outcome | None) -> None:
    if outcome is not None:
        raise ReplyError(Reply.json(outcome.status, outcome.payload))


def _version_header(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"Square-Version": request.headers.get("square-version", "")}


def _respond(request: Request[Any, Any, Any], status: int, content: bytes) -> Response[bytes]:
    return Response(content, status_code=status, media_type="application/json", headers=_version_header(request))


async def _run_idempotent(
    request: Request[Any, Any, Any], sim: SquareSimulator, raw: bytes, key: str, operation: Callable[[], Outcome]
) -> Response[bytes]:
    fingerprint = json_value(raw)
    method, path = request.method, request.url.path
    async with sim.lock:
        try:
            stored = sim.stored_response(key, method, path, fingerprint)
        except IdempotencyKeyReused:
            raise invalid_request(
                "IDEMPOTENCY_KEY_REUSED",
                "The idempotency key can only be retried with the same request data.",
                "idempotency_key",
            ) from None
        if stored is not None:
            return _respond(request, stored.status, stored.content)
        outcome = operation()
        content = msgspec.json.encode(outcome.payload)
        sim.idempotency[key] = StoredResponse(method, path, fingerprint, outcome.status, content)
    return _respond(request, outcome.status, content)


# --- endpoints -------------------------------------------------------------------------------


@post("/v2/gift-cards/from-gan", status_code=200)
async def retrieve_from_gan(request: Request[Any, Any, Any], sim: SquareSimulator) -> Response[bytes]:
    body = _decode(request, await request.body(), RetrieveFromGanRequest)
    async with sim.lock:
        outcome = sim.retrieve_from_gan(body.gan)
    return _respond(request, outcome.status, msgspec.json.encode(outcome.payload))


@get("/v2/gift-cards/{card_id:str}")
async def retrieve(request: Request[Any, Any, Any], sim: SquareSimulator, card_id: str) -> Response[bytes]:
    async with sim.lock:
        outcome = sim.retrieve(card_id)
    return _respond(request, outcome.status, msgspec.json.encode(outcome.payload))


@post("/v2/gift-cards", status_code=200)
async def create_gift_card(request: Request[Any, Any, Any], sim: SquareSimulator) -> Response[bytes]:
    raw = await request.body()
    body = _decode(request, raw, CreateGiftCardRequest)
    _reject(validate_create(body.gift_card))
    return await _run_idempotent(
        request, sim, raw, body.idempotency_key, lambda: sim.create(body.location_id, body.gift_card)
    )


@post("/v2/gift-cards/activities", status_code=200)
async def create_activity(request: Request[Any, Any, Any], sim: SquareSimulator) -> Response[bytes]:
    raw = await request.body()
    body = _decode(request, raw, CreateGiftCardActivityRequest)
    activity = body.gift_card_activity
    for name in DETAIL_FIELDS.values():
        details = getattr(activity, name)
        if details is not None and hasattr(details, "amount_money"):
            _check_money(details.amount_money, f"gift_card_activity.{name}.amount_money")
    _reject(validate_activity(activity))
    return await _run_idempotent(request, sim, raw, body.idempotency_key, lambda: sim.create_activity(activity))


# --- app -------------------------------------------------------------------------------------


def create_app(
    access_token: str,
    *,
    square_versions: Iterable[str] = DEFAULT_SQUARE_VERSIONS,
    currency: str = "USD",
) -> SimApp:
    """A fresh Square gift card simulator with its own cards.

    ``access_token`` is the accepted ``Authorization: Bearer`` token; ``square_versions`` the
    accepted ``Square-Version`` values; ``currency`` the seller's currency (all its gift cards).
    """
    if not access_token:
        raise ValueError("access_token must not be empty")
    versions = tuple(square_versions)
    if not versions or not all(VERSION_FORMAT.match(v) for v in versions):
        raise ValueError("square_versions must be YYYY-MM-DD dates")
    return create_sim_app(
        core=SquareSimulator(currency),
        dialect=SquareDialect(access_token, versions),
        route_handlers=[retrieve_from_gan, retrieve, create_gift_card, create_activity],
        logger_name="simulators.square",
        masked_headers=("authorization",),
        max_body_bytes=MAX_BODY_BYTES,
    )
