"""Routes of the simulated Adyen Stored Value API v46, and its error dialect.

Error bodies are Adyen's ``ServiceError``: ``{status, errorCode, message, errorType, pspReference?}``.
Which request gives which error is listed in README.md.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from http import HTTPStatus
from typing import Any, Callable, Iterable, TypeVar

import msgspec
from litestar import Request, Response, post

from simulators.simkit import (
    CURRENCIES,
    MAX_BODY_BYTES,
    ApiRequest,
    Dialect,
    IdempotencyKeyReused,
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
    Amount,
    BalanceCheckRequest,
    IssueRequest,
    LoadRequest,
    PaymentMethod,
    StatusChangeRequest,
    VoidRequest,
)
from .state import AdyenSimulator, Outcome, psp_reference

Body = TypeVar("Body", bound=msgspec.Struct)

BASE_PATH = "/pal/servlet/StoredValue/v46"
DEFAULT_MERCHANT_ACCOUNT = "TestMerchantGateway"
IDEMPOTENCY_KEY_MAX = 64
BRANDS = ("givex", "svs", "valuelink")
# ISO 4217 codes this simulator accepts; any other three letters is "Unsupported currency specified".


def service_error(
    status: int, code: str, message: str, error_type: str, *, psp: bool = False, headers: dict[str, str] | None = None
) -> Reply:
    """Adyen's ServiceError body."""
    payload: dict[str, Any] = {"status": status, "errorCode": code, "message": message, "errorType": error_type}
    if psp:
        payload["pspReference"] = psp_reference()
    return Reply.json(status, payload, headers)


def _http_status_error(status: int) -> Reply:
    # Adyen words errors that never reach an endpoint as "HTTP Status Response - <reason>".
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    error_type = "security" if status in (401, 403) else "internal" if status >= 500 else "validation"
    return service_error(status, "000", f"HTTP Status Response - {phrase}", error_type)


def validation_error(code: str, message: str, status: int = 400) -> ReplyError:
    # The v46 OpenAPI file lists 200, 400, 401, 403 and 500 for every endpoint: a request Adyen
    # does not accept is a 400 ServiceError (Checkout's 422 does not exist in this API).
    return ReplyError(service_error(status, code, message, "validation", psp=True))


class AdyenDialect(Dialect):
    """Adyen's error shapes; authentication by ``X-API-Key`` or HTTP Basic."""

    def __init__(self, api_key: str, basic_auth: tuple[str, str] | None) -> None:
        self._key = api_key.encode()
        self._basic = f"{basic_auth[0]}:{basic_auth[1]}".encode() if basic_auth else None

    def check(self, request: ApiRequest) -> Reply | None:
        if self._authenticated(request):
            return None
        return _http_status_error(401)

    def _authenticated(self, request: ApiRequest) -> bool:
        key = request.header("x-api-key")
        if key is not None and hmac.compare_digest(key.encode("latin-1"), self._key):
            return True
        authorization = request.header("authorization") or ""
        scheme, _, credentials = authorization.partition(" ")
        if self._basic is None or scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(decoded, self._basic)

    def fault(self, status: int) -> Reply:
        return _http_status_error(status)

    def too_large(self, limit: int) -> Reply:
        return service_error(
            413, "29_100", f"The request is larger than the allowed maximum of {limit} bytes", "validation"
        )

    def http_error(self, status: int, detail: str) -> Reply:
        return _http_status_error(status)

    def internal_error(self) -> Reply:
        return _http_status_error(500)


# --- request decoding and validation ------------------------------------------------------------


def _decode(request: Request[Any, Any, Any], raw: bytes, schema: type[Body]) -> Body:
    if raw and media_type(request.headers.get("content-type")) != "application/json":
        raise ReplyError(_http_status_error(415))
    if not raw.strip():
        raise validation_error("702", "Empty input which would have resulted in a null result.", 400)
    try:
        body = decode_strict(raw, schema)
    except msgspec.DecodeError as exc:
        raise _problem_error(exc) from None
    null = _first_null(json_value(raw), "$")
    if null is not None:
        # No field of the v46 request schemas is nullable (paymentMethod values are strings).
        raise validation_error("702", f"Problem parsing request: null is not a valid value - at `{null}`")
    return body


def _first_null(value: Any, path: str) -> str | None:
    if value is None:
        return path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _first_null(child, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found is not None:
            return found
    return None


def _problem_error(exc: msgspec.DecodeError) -> ReplyError:
    problem = explain(exc)
    if problem.kind == "syntax" or (problem.kind == "type" and problem.path == ""):
        return validation_error("702", f"Problem parsing request: {problem.message}", 400)
    root = problem.path.split(".", 1)[0]
    if problem.kind == "missing":
        if problem.path == "reference":
            return validation_error("130", "Reference Missing")
        if problem.path == "amount":
            return validation_error("100", "Required object 'amount' is not provided.")
        if problem.path == "originalReference":
            return validation_error("167", "Original pspReference required for this operation")
        if problem.path == "merchantAccount":
            return ReplyError(service_error(403, "901", "Invalid Merchant Account", "security", psp=True))
        if root != "amount":
            return validation_error("158", f"Required field '{problem.path}' not specified")
    if problem.kind == "length" and problem.op == "<=":
        return validation_error("29_001", f"Field '{problem.path}' may not exceed {problem.bound} characters.")
    if root == "amount":
        if problem.path == "amount.currency" and problem.kind != "missing":
            return validation_error("138", "Unsupported currency specified")
        return validation_error("137", "Field 'amount' is not valid.")
    return validation_error("702", f"Problem parsing request: {problem.message}")


class _Checked(msgspec.Struct, frozen=True):
    brand: str
    number: str
    pin: str | None


def _check_amount(amount: Amount | None, *, positive: bool = False) -> None:
    if amount is None:
        return
    if amount.currency not in CURRENCIES:
        raise validation_error("138", "Unsupported currency specified")
    if amount.value < 0 or (positive and amount.value == 0):
        raise validation_error("137", "Field 'amount' is not valid.")


def _check_brand(method: PaymentMethod) -> str:
    if method.type not in BRANDS:
        raise validation_error("905", "Payment details are not supported")
    return method.type


def _check_card(method: PaymentMethod) -> _Checked:
    brand = _check_brand(method)
    number = method.number
    if number is None or not (number.isascii() and number.isdigit() and 8 <= len(number) <= 30):
        raise validation_error("101", "Invalid card number")
    return _Checked(brand, number, method.securityCode)


class _Context:
    """What every endpoint checks before its business logic."""

    def __init__(self, merchant_accounts: Iterable[str]) -> None:
        self.merchant_accounts = frozenset(merchant_accounts)

    def check_merchant(self, account: str) -> None:
        if account not in self.merchant_accounts:
            raise ReplyError(service_error(403, "901", "Invalid Merchant Account", "security", psp=True))


def _idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        raise validation_error("702", f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    return key


async def _handle(
    request: Request[Any, Any, Any],
    sim: AdyenSimulator,
    schema: type[Body],
    validate: Callable[[Body], Callable[[], Outcome]],
) -> Response[bytes]:
    """Decode, validate (outside the lock), then run the operation with idempotent replay."""
    key = _idempotency_key(request)
    raw = await request.body()
    body = _decode(request, raw, schema)
    context: _Context = request.app.state.adyen_context
    context.check_merchant(body.merchantAccount)  # type: ignore[attr-defined]
    operation = validate(body)
    fingerprint = json_value(raw)
    method, path = request.method, request.url.path
    echo = {"Idempotency-Key": key} if key is not None else {}

    async with sim.lock:
        if key is not None:
            try:
                stored = sim.stored_response(key, method, path, fingerprint)
            except IdempotencyKeyReused:
                raise validation_error("704", "request already processed or in progress") from None
            if stored is not None:
                return _json(stored.status, stored.content, echo)
        outcome = operation()
        content = msgspec.json.encode(outcome.payload)
        if key is not None:
            sim.idempotency[key] = StoredResponse(method, path, fingerprint, outcome.status, content)
    return _json(outcome.status, content, echo)


def _json(status: int, content: bytes, headers: dict[str, str]) -> Response[bytes]:
    return Response(content, status_code=status, media_type="application/json", headers=headers or None)


# --- endpoints -------------------------------------------------------------------------------


@post(f"{BASE_PATH}/checkBalance", status_code=200)
async def check_balance(request: Request[Any, Any, Any], sim: AdyenSimulator) -> Response[bytes]:
    def validate(body: BalanceCheckRequest) -> Callable[[], Outcome]:
        card = _check_card(body.paymentMethod)
        _check_amount(body.amount)
        return lambda: sim.check_balance(card.brand, card.number, card.pin, body.amount)

    return await _handle(request, sim, BalanceCheckRequest, validate)


@post(f"{BASE_PATH}/issue", status_code=200)
async def issue(request: Request[Any, Any, Any], sim: AdyenSimulator) -> Response[bytes]:
    def validate(body: IssueRequest) -> Callable[[], Outcome]:
        brand = _check_brand(body.paymentMethod)
        if body.paymentMethod.number is not None or body.paymentMethod.securityCode is not None:
            raise validation_error("702", "Problem parsing request: only `paymentMethod.type` may be sent to /issue")
        _check_amount(body.amount)
        # Amount: optional for Givex, required and above zero for SVS, not used for Fiserv (ValueLink).
        if brand == "svs" and (body.amount is None or body.amount.value == 0):
            raise validation_error("137", "Field 'amount' is not valid.")
        if brand == "valuelink" and body.amount is not None:
            raise validation_error("137", "Field 'amount' is not valid.")
        return lambda: sim.issue(brand, body.amount)  # type: ignore[arg-type]

    return await _handle(request, sim, IssueRequest, validate)


@post(f"{BASE_PATH}/load", status_code=200)
async def load(request: Request[Any, Any, Any], sim: AdyenSimulator) -> Response[bytes]:
    def validate(body: LoadRequest) -> Callable[[], Outcome]:
        card = _check_card(body.paymentMethod)
        _check_amount(body.amount, positive=True)
        return lambda: sim.load(card.brand, card.number, card.pin, body.amount)

    return await _handle(request, sim, LoadRequest, validate)


@post(f"{BASE_PATH}/changeStatus", status_code=200)
async def change_status(request: Request[Any, Any, Any], sim: AdyenSimulator) -> Response[bytes]:
    def validate(body: StatusChangeRequest) -> Callable[[], Outcome]:
        card = _check_card(body.paymentMethod)
        _check_amount(body.amount)
        if body.status == "inactive":
            if body.amount is not None:  # deactivation is always without amount
                raise validation_error("137", "Field 'amount' is not valid.")
            return lambda: sim.deactivate(card.brand, card.number, card.pin)
        return lambda: sim.activate(card.brand, card.number, card.pin, body.amount)

    return await _handle(request, sim, StatusChangeRequest, validate)


@post(f"{BASE_PATH}/voidTransaction", status_code=200)
async def void_transaction(request: Request[Any, Any, Any], sim: AdyenSimulator) -> Response[bytes]:
    def validate(body: VoidRequest) -> Callable[[], Outcome]:
        def run() -> Outcome:
            outcome = sim.void(body.originalReference)
            if outcome is None:
                payload = {
                    "status": 400,
                    "errorCode": "906",
                    "message": "Invalid Request: Original pspReference is invalid for this environment",
                    "errorType": "validation",
                    "pspReference": psp_reference(),
                }
                return Outcome(400, payload)
            return outcome

        return run

    return await _handle(request, sim, VoidRequest, validate)


# --- app -------------------------------------------------------------------------------------


def create_app(
    api_key: str,
    *,
    merchant_accounts: Iterable[str] = (DEFAULT_MERCHANT_ACCOUNT,),
    basic_auth: tuple[str, str] | None = None,
    default_currency: str = "USD",
) -> SimApp:
    """A fresh Adyen Stored Value simulator with its own cards.

    ``api_key`` is the accepted ``X-API-Key``; ``basic_auth`` an optional (username, password)
    accepted as HTTP Basic; ``merchant_accounts`` the accounts requests may name;
    ``default_currency`` the currency of Givex cards issued without an amount.
    """
    if not api_key:
        raise ValueError("api_key must not be empty")
    accounts = tuple(merchant_accounts)
    if not accounts:
        raise ValueError("at least one merchant account is needed")
    app = create_sim_app(
        core=AdyenSimulator(default_currency),
        dialect=AdyenDialect(api_key, basic_auth),
        route_handlers=[check_balance, issue, load, change_status, void_transaction],
        logger_name="simulators.adyen",
        masked_headers=("x-api-key", "authorization"),
        max_body_bytes=MAX_BODY_BYTES,
    )
    app.state.adyen_context = _Context(accounts)
    return app
