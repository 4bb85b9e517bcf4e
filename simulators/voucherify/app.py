"""Routes of the simulated Voucherify API (gift vouchers, OAuth 2.0 tokens), and its error dialect.

Every error is Voucherify's error object ``{code, key, message, details, request_id, ...}`` with
the same HTTP status in ``code``. Which request gives which error is listed in README.md.

Voucher codes may contain any character (``/``, spaces, ``#``...) percent-encoded in the path; the
routes read the still-encoded ``raw_path`` so that ``%2F`` inside a code is not taken for a path
separator.
"""

from __future__ import annotations

import hmac
import re
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

import msgspec
from litestar import Request, Response, get, post

from simulators.simkit import (
    MAX_BODY_BYTES,
    ApiRequest,
    Dialect,
    Reply,
    ReplyError,
    SimApp,
    create_sim_app,
    decode_strict,
    explain,
    media_type,
)

from .schemas import (
    CUSTOMER_NOT_SIMULATED,
    NOT_SIMULATED,
    ORDER_NOT_SIMULATED,
    REDEEM_NOT_SIMULATED,
    BalanceBody,
    CreateVoucherBody,
    GenerateVoucherBody,
    RedeemBody,
    RollbackBody,
)
from .state import (
    DEFAULT_TOKEN_LIFETIME,
    Outcome,
    VoucherifySimulator,
    normalise_timestamp,
    parse_timestamp,
    request_id,
)

Body = TypeVar("Body", bound=msgspec.Struct)

VOUCHERS_PREFIX = b"/v1/vouchers/"
TOKEN_PATH = "/v1/oauth/token"
# Allowed `scope` values of POST /v1/oauth/token (oauth.json, OAuthTokenGenerateRequestBody).
SCOPES = frozenset(
    "api assets async-actions campaigns categories client_api client_consents client_customers client_events "
    "client_promotions client_publish client_qualifications client_redeem client_redemptions client_validate "
    "client_validations client_vouchers consents customers events exports locations loyalties metadata-schemas "
    "orders product-collections products promotions publications qualifications redemptions referrals rewards "
    "segments SKUs task-results templates trash-bin validation-rules-assignments validation-rules validations "
    "vouchers".split()
)


def error_reply(status: int, key: str | None, message: str, details: str | None = None) -> Reply:
    payload: dict[str, Any] = {"code": status}
    if key is not None:
        payload["key"] = key
    payload["message"] = message
    if details is not None:
        payload["details"] = details
    payload["request_id"] = request_id()
    headers = {"X-Rate-Limit-Remaining": "0"} if status == 429 else None
    return Reply.json(status, payload, headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# Errors that never reach an endpoint (and status faults): status -> (key, message).
_HTTP_ERRORS: dict[int, tuple[str | None, str]] = {
    400: ("invalid_payload", "Invalid payload"),
    401: ("unauthorized", "Unauthorized"),
    402: (None, "Payment Required"),
    404: ("not_found", "Resource not found"),
    405: (None, "HTTP Method Not Allowed"),
    406: (None, "Not Acceptable"),
    413: ("query_too_large", "Payload Too Large"),
    415: (None, "Unsupported Media Type"),
    429: ("too_many_requests", "API limit reached"),
    500: (None, "Internal Server Error"),
}


def http_error(status: int, details: str | None = None) -> Reply:
    key, message = _HTTP_ERRORS.get(status, (None, _phrase(status)))
    return error_reply(status, key, message, details)


def fail(status: int, key: str | None, message: str, details: str | None = None) -> ReplyError:
    return ReplyError(error_reply(status, key, message, details))


class VoucherifyDialect(Dialect):
    """``X-App-Id`` + ``X-App-Token`` on every call, or ``Authorization: Bearer`` from /v1/oauth/token."""

    def __init__(self, app_id: str, app_token: str, sim: VoucherifySimulator) -> None:
        self._app_id = app_id.encode()
        self._app_token = app_token.encode()
        self._sim = sim

    def _app_keys_ok(self, request: ApiRequest) -> bool:
        app_id, app_token = request.header("x-app-id"), request.header("x-app-token")
        if app_id is None or app_token is None:
            return False
        id_ok = hmac.compare_digest(app_id.encode("latin-1"), self._app_id)
        token_ok = hmac.compare_digest(app_token.encode("latin-1"), self._app_token)
        return id_ok and token_ok

    def check(self, request: ApiRequest) -> Reply | None:
        if self._app_keys_ok(request):
            return None
        if request.path == TOKEN_PATH:
            # Tokens are minted with the application keys only (oauth.json: security X-App-Id + X-App-Token).
            return http_error(401, "Provide the X-App-Id and X-App-Token headers of an API key")
        authorization = request.header("authorization")
        if authorization is None:
            has_keys = request.header("x-app-id") is not None or request.header("x-app-token") is not None
            details = "Invalid X-App-Id or X-App-Token" if has_keys else "Missing X-App-Id and X-App-Token headers"
            return http_error(401, details)
        scheme, _, credentials = authorization.partition(" ")
        token = self._sim.valid_token(credentials.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return http_error(401, "Invalid or expired OAuth token")
        if request.path.startswith("/v1/vouchers") and not token.allows_vouchers():
            return http_error(401, "The OAuth token's scope does not allow this endpoint")
        if request.path.startswith("/v1/redemptions") and not token.allows("redemptions"):
            return http_error(401, "The OAuth token's scope does not allow this endpoint")
        return None

    def fault(self, status: int) -> Reply:
        return http_error(status, f"Simulated fault (HTTP {status})")

    def too_large(self, limit: int) -> Reply:
        return http_error(413, f"Request body exceeds {limit} bytes")

    def http_error(self, status: int, detail: str) -> Reply:
        if status == 405:
            return http_error(405, "This HTTP method is not supported by this endpoint.")
        if status == 404:
            return http_error(404, "No such endpoint")
        return http_error(status, detail)

    def internal_error(self) -> Reply:
        return http_error(500)


# --- request decoding ------------------------------------------------------------------------------


def _problem_error(exc: msgspec.DecodeError) -> ReplyError:
    problem = explain(exc)
    if problem.kind == "syntax":
        return fail(400, "invalid_payload", "Invalid payload", f"Malformed JSON: {problem.message}")
    if problem.kind == "type" and not problem.path:
        return fail(400, "invalid_payload", "Invalid payload", "The request body must be a JSON object")
    key = "invalid_gift" if problem.path.startswith("gift") else "invalid_payload"
    if problem.kind == "unknown":
        details = f"Property .{problem.path} is not allowed"
    elif problem.kind == "missing":
        details = f"Property .{problem.path} is required"
    elif problem.kind == "type":
        details = f"Property .{problem.path} should be {problem.expected}, got {problem.got}"
    elif problem.kind == "range":
        details = f"Property .{problem.path} should be {problem.op} {problem.bound}"
    elif problem.kind == "enum":
        details = f"Property .{problem.path} has an unsupported value '{problem.value}'"
    else:
        details = f"Property .{problem.path} is invalid: {problem.message}"
    message = "Invalid gift" if key == "invalid_gift" else "Invalid payload"
    return fail(400, key, message, details)


def _decode(request: Request[Any, Any, Any], raw: bytes, schema: type[Body]) -> Body:
    if media_type(request.headers.get("content-type")) != "application/json":
        raise fail(415, None, "Unsupported Media Type", "Request bodies must be sent as application/json")
    if not raw.strip():
        raise fail(400, "invalid_payload", "Invalid payload", "A JSON request body is required")
    try:
        return decode_strict(raw, schema)
    except msgspec.DecodeError as exc:
        raise _problem_error(exc) from None


def _check_date(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if parse_timestamp(value) is None:
        raise fail(400, "invalid_voucher", "Invalid Voucher", f"Property .{field} must be an ISO 8601 date-time")
    return normalise_timestamp(value)


def _voucher_spec(body: CreateVoucherBody) -> dict[str, Any]:
    """The create rules that do not depend on state; raises the matching 400."""
    for name in NOT_SIMULATED:
        if getattr(body, name) is not msgspec.UNSET:
            raise fail(400, "invalid_payload", "Invalid payload", f"Property .{name} is not supported by the simulator")
    if body.type is None:
        raise fail(400, "invalid_voucher", "Invalid Voucher", "Property .type is required")
    if body.type != "GIFT_VOUCHER":
        details = f"{body.type} is not supported by the simulator (GIFT_VOUCHER only)"
        raise fail(400, "invalid_voucher", "Invalid Voucher", details)
    if body.gift is None:
        raise fail(400, "invalid_voucher", "Invalid Voucher", "A GIFT_VOUCHER requires the gift object")
    start = _check_date(body.start_date, "start_date")
    end = _check_date(body.expiration_date, "expiration_date")
    if start and end and end < start:
        raise fail(400, "invalid_voucher", "Invalid Voucher", "expiration_date must be after start_date")
    return {
        "amount": body.gift.amount,
        "effect": body.gift.effect or "APPLY_TO_ORDER",
        "active": True if body.active is None else body.active,
        "category": body.category,
        "additional_info": body.additional_info,
        "metadata": body.metadata or {},
        "start_date": start,
        "expiration_date": end,
    }


def _respond(outcome: Outcome) -> Response[bytes]:
    return Response(msgspec.json.encode(outcome.payload), status_code=outcome.status, media_type="application/json")


def _voucher_path(request: Request[Any, Any, Any]) -> tuple[str, str | None]:
    """``(code, action)`` from the still-encoded path ``/v1/vouchers/{code}[/{action}]``."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    raw = raw.split(b"?", 1)[0]
    segments = raw[len(VOUCHERS_PREFIX) :].split(b"/")
    if not raw.startswith(VOUCHERS_PREFIX) or not segments[0] or len(segments) > 2:
        raise ReplyError(http_error(404, "No such endpoint"))
    try:
        code = unquote(segments[0].decode("ascii"), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise ReplyError(http_error(404, "No such endpoint")) from None
    action = segments[1].decode("ascii", errors="replace") if len(segments) == 2 else None
    return code, action


# --- endpoints -------------------------------------------------------------------------------------


@post(TOKEN_PATH, status_code=200)
async def generate_token(request: Request[Any, Any, Any], sim: VoucherifySimulator) -> Response[bytes]:
    if media_type(request.headers.get("content-type")) != "application/x-www-form-urlencoded":
        raise fail(415, None, "Unsupported Media Type", "Send the request as application/x-www-form-urlencoded")
    raw = await request.body()
    try:
        fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw)))
    except (UnicodeDecodeError, ValueError):
        raise fail(400, "invalid_payload", "Invalid payload", "Malformed form body") from None
    grant_type, scope = fields.get("grant_type"), fields.get("scope")
    if not grant_type or not scope:
        raise fail(400, "missing_parameters", "Missing parameters", "grant_type and scope are required")
    if grant_type != "client_credentials":
        raise fail(400, "invalid_grant_type", "Invalid grant_type")
    scopes = scope.split(" ")
    if any(value not in SCOPES for value in scopes):
        raise fail(400, "invalid_scope", f"Invalid scope: {scope}")
    async with sim.lock:
        token = sim.issue_token(" ".join(scopes))
    return Response(msgspec.json.encode(token), status_code=200, media_type="application/json")


@get("/v1/vouchers")
async def list_vouchers(request: Request[Any, Any, Any], sim: VoucherifySimulator) -> Response[bytes]:
    def number(name: str, default: int, high: int) -> int:
        value = request.query_params.get(name)
        if value is None:
            return default
        if not value.isdigit() or not 1 <= int(value) <= high:
            raise fail(400, "invalid_query_params", "Invalid query params", f"{name} must be an integer 1-{high}")
        return int(value)

    limit, page = number("limit", 10, 100), number("page", 1, 99)
    async with sim.lock:
        outcome = sim.list(limit, page)
    return _respond(outcome)


@post("/v1/vouchers", status_code=200)
async def generate_voucher(request: Request[Any, Any, Any], sim: VoucherifySimulator) -> Response[bytes]:
    body = _decode(request, await request.body(), GenerateVoucherBody)
    spec = _voucher_spec(body)
    if body.code is not None and body.code_config is not None:
        raise fail(400, "invalid_code_config", "Invalid code config", "Send either code or code_config, not both")
    async with sim.lock:
        code = body.code if body.code is not None else sim.generate_code(body.code_config)
        outcome = sim.create(code, spec)
    return _respond(outcome)


@get("/v1/vouchers/{rest:path}")
async def get_voucher(request: Request[Any, Any, Any], sim: VoucherifySimulator, rest: str) -> Response[bytes]:
    code, action = _voucher_path(request)
    if action == "transactions":
        query = _query(request, {"limit", "order", "starting_after_id"})
        limit = _int_param(query, "limit", 10, 100)
        order = query.get("order", "-id")
        if order not in ("id", "-id"):
            raise fail(400, "invalid_query_params", "Invalid query params", "order must be id or -id")
        async with sim.lock:
            outcome = sim.list_transactions(code, limit, order, query.get("starting_after_id"))
        return _respond(outcome)
    if action is not None:
        raise ReplyError(http_error(404, "No such endpoint"))
    async with sim.lock:
        outcome = sim.get(code)
    return _respond(outcome)


@post("/v1/vouchers/{rest:path}", status_code=200)
async def voucher_action(request: Request[Any, Any, Any], sim: VoucherifySimulator, rest: str) -> Response[bytes]:
    code, action = _voucher_path(request)
    if action is None:  # Create Voucher with a given code
        body = _decode(request, await request.body(), CreateVoucherBody)
        spec = _voucher_spec(body)
        async with sim.lock:
            outcome = sim.create(code, spec)
    elif action in ("enable", "disable"):
        async with sim.lock:
            outcome = sim.set_active(code, action == "enable")
    elif action == "balance":
        balance = _decode(request, await request.body(), BalanceBody)
        if balance.amount == 0:
            raise fail(400, "invalid_add_balance_params", "Invalid add balance params", "amount must not be 0")
        async with sim.lock:
            outcome = sim.adjust_balance(code, balance)
    else:
        raise ReplyError(http_error(404, "No such endpoint"))
    return _respond(outcome)


# --- redemptions ---------------------------------------------------------------------------------

_FILTER = re.compile(r"^filters\[(?P<field>\w+)\]\[conditions\]\[(?P<op>\$\w+)\](?:\[\d*\])?$")
FILTER_FIELDS = frozenset(
    {"voucher_code", "related_object_id", "parent_redemption_id", "failure_code", "result", "object", "customer_id"}
)
NOT_SIMULATED_FILTERS = frozenset({"related_object_parent_id", "campaign_name", "user_login"})
FILTER_OPS = frozenset({"$is", "$is_not", "$in", "$not_in", "$has_value", "$is_unknown"})
REDEMPTION_ORDERS = frozenset(
    {"created_at", "-created_at", "id", "-id", "voucher_code", "-voucher_code", "tracking_id", "-tracking_id",
     "customer_id", "-customer_id"}
)


def _query(request: Request[Any, Any, Any], allowed: set[str]) -> dict[str, str]:
    """The query parameters, each at most once, none outside ``allowed``."""
    pairs = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    query: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise fail(400, "invalid_query_params", "Invalid query params", f"Unknown query parameter {name}")
        if name in query:
            raise fail(400, "invalid_query_params", "Invalid query params", f"{name} given twice")
        query[name] = value
    return query


def _int_param(query: dict[str, str], name: str, default: int, high: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= high:
        raise fail(400, "invalid_query_params", "Invalid query params", f"{name} must be an integer 1-{high}")
    return int(value)


def _not_simulated(obj: Any, names: tuple[str, ...], where: str) -> None:
    for name in names:
        if getattr(obj, name) is not msgspec.UNSET:
            raise fail(400, "invalid_payload", "Invalid payload", f"Property {where}.{name} is not supported by the simulator")


def _check_redeem(body: RedeemBody) -> None:
    _not_simulated(body, REDEEM_NOT_SIMULATED, "")
    for n, item in enumerate(body.redeemables):
        if item.object != "voucher":
            raise fail(400, "invalid_payload", "Invalid payload",
                       f"Property .redeemables[{n}].object {item.object} is not supported by the simulator")
        if item.reward is not msgspec.UNSET:
            raise fail(400, "invalid_payload", "Invalid payload",
                       f"Property .redeemables[{n}].reward is not supported by the simulator")
    if body.order is not None:
        _not_simulated(body.order, ORDER_NOT_SIMULATED, ".order")
    if body.customer is not None:
        _not_simulated(body.customer, CUSTOMER_NOT_SIMULATED, ".customer")


@post("/v1/redemptions", status_code=200)
async def redeem(request: Request[Any, Any, Any], sim: VoucherifySimulator) -> Response[bytes]:
    _query(request, set())
    body = _decode(request, await request.body(), RedeemBody)
    _check_redeem(body)
    async with sim.lock:
        outcome = sim.redeem(body)
    return _respond(outcome)


@get("/v1/redemptions")
async def list_redemptions(request: Request[Any, Any, Any], sim: VoucherifySimulator) -> Response[bytes]:
    pairs = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    plain: dict[str, str] = {}
    conditions: dict[tuple[str, str], list[str]] = {}
    junction = "and"
    for name, value in pairs:
        if name in ("limit", "page", "result", "customer", "order"):
            if name in plain:
                raise fail(400, "invalid_query_params", "Invalid query params", f"{name} given twice")
            plain[name] = value
        elif name == "filters[junction]":
            if value not in ("and", "or"):
                raise fail(400, "invalid_query_params", "Invalid query params", "filters[junction] must be and or or")
            junction = value
        elif (match := _FILTER.match(name)) is not None:
            field, op = match.group("field"), match.group("op")
            if field in NOT_SIMULATED_FILTERS:
                raise fail(400, "invalid_query_params", "Invalid query params",
                           f"filters[{field}] is not supported by the simulator")
            if field not in FILTER_FIELDS or op not in FILTER_OPS:
                raise fail(400, "invalid_query_params", "Invalid query params", f"Unknown filter {name}")
            conditions.setdefault((field, op), []).append(value)
        elif name in ("campaign", "created_at[before]", "created_at[after]"):
            raise fail(400, "invalid_query_params", "Invalid query params", f"{name} is not supported by the simulator")
        else:
            raise fail(400, "invalid_query_params", "Invalid query params", f"Unknown query parameter {name}")
    limit, page = _int_param(plain, "limit", 10, 100), _int_param(plain, "page", 1, 99)
    order = plain.get("order", "-created_at")
    if order not in REDEMPTION_ORDERS:
        raise fail(400, "invalid_query_params", "Invalid query params", f"order {order} is not supported")
    order = order.replace("created_at", "date")
    filters = [(field, op, values) for (field, op), values in conditions.items()]
    if "result" in plain:
        filters.append(("result", "$in", plain["result"].split(",")))
    if "customer" in plain:
        filters.append(("customer_id", "$is", [plain["customer"]]))
    async with sim.lock:
        outcome = sim.list_redemptions(limit, page, filters, junction if conditions else "and", order)
    return _respond(outcome)


@get("/v1/redemptions/{redemption_id:str}")
async def get_redemption(request: Request[Any, Any, Any], sim: VoucherifySimulator, redemption_id: str) -> Response[bytes]:
    _query(request, set())
    async with sim.lock:
        outcome = sim.get_redemption(redemption_id)
    return _respond(outcome)


async def _rollback(request: Request[Any, Any, Any], sim: VoucherifySimulator, redemption_id: str, stacked: bool) -> Response[bytes]:
    query = _query(request, {"reason", "tracking_id"})
    raw = await request.body()
    body = _decode(request, raw, RollbackBody) if raw.strip() else None
    if body is not None:
        if body.order is not None:
            _not_simulated(body.order, ORDER_NOT_SIMULATED, ".order")
        if body.customer is not None:
            _not_simulated(body.customer, CUSTOMER_NOT_SIMULATED, ".customer")
    async with sim.lock:
        outcome = sim.rollback(redemption_id, body, query.get("reason"), stacked)
    return _respond(outcome)


@post("/v1/redemptions/{redemption_id:str}/rollback", status_code=200)
async def rollback_redemption(request: Request[Any, Any, Any], sim: VoucherifySimulator, redemption_id: str) -> Response[bytes]:
    return await _rollback(request, sim, redemption_id, stacked=False)


@post("/v1/redemptions/{redemption_id:str}/rollbacks", status_code=200)
async def rollback_stacked(request: Request[Any, Any, Any], sim: VoucherifySimulator, redemption_id: str) -> Response[bytes]:
    return await _rollback(request, sim, redemption_id, stacked=True)


# --- app -------------------------------------------------------------------------------------------


def create_app(app_id: str, app_token: str, *, token_lifetime: int = DEFAULT_TOKEN_LIFETIME) -> SimApp:
    """A fresh Voucherify simulator with its own vouchers.

    ``app_id``/``app_token`` are the accepted ``X-App-Id``/``X-App-Token``; ``token_lifetime`` the
    seconds an OAuth token from ``POST /v1/oauth/token`` lives (900 like Voucherify; lower it to
    test expiry).
    """
    if not app_id or not app_token:
        raise ValueError("app_id and app_token must not be empty")
    if token_lifetime < 1:
        raise ValueError("token_lifetime must be at least 1 second")
    sim = VoucherifySimulator(app_id, token_lifetime)
    return create_sim_app(
        core=sim,
        dialect=VoucherifyDialect(app_id, app_token, sim),
        route_handlers=[
            generate_token,
            list_vouchers,
            generate_voucher,
            get_voucher,
            voucher_action,
            redeem,
            list_redemptions,
            get_redemption,
            rollback_redemption,
            rollback_stacked,
        ],
        logger_name="simulators.voucherify",
        masked_headers=("x-app-id", "x-app-token", "authorization"),
        max_body_bytes=MAX_BODY_BYTES,
    )
