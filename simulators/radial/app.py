"""Routes of the simulated Radial Payments stored value (gift card) and tender type lookup APIs.

Requests and replies are XML in the ``http://api.gsicommerce.com/schema/checkout/1.0`` namespace.
Business outcomes (``ResponseCode`` Success / Fail / Timeout, or the lookup's codes) come with HTTP
200; requests that are not understood get an XML ``Fault`` (``CreateTimestamp``, ``Code``,
``Description``) with a 4xx status. Which request gives which answer: README.md.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from litestar import Request, Response, post
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from simulators.simkit import (
    MAX_BODY_BYTES,
    ApiRequest,
    Dialect,
    Gate,
    IdempotencyKeyReused,
    Reply,
    ReplyError,
    SimApp,
    StoredResponse,
    create_sim_app,
    media_type,
)

from . import xmlsafe
from .schemas import AMOUNT, CURRENCIES, MESSAGES, NOT_SIMULATED, NS, Rule
from .schemas import Message as MessageSpec
from .state import STORED_VALUE_TENDERS, STORES, RadialSimulator, Result, Store, money

XML_TYPES = ("application/xml", "text/xml")
REQUEST_ID_MAX = 40
STORED_VALUE_OPERATIONS = ("balance", "fundandactivate", "cashout")
REPLY_ROOTS = {
    "balance": "StoredValueBalanceReply",
    "fundandactivate": "StoredValueFundAndActivateReply",
    "cashout": "StoredValueCashOutReply",
}


# --- faults ----------------------------------------------------------------------------------------


def _timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def fault_reply(status: int, code: str, description: str, content_type: str = "application/xml") -> Reply:
    content = xmlsafe.document(
        "Fault",
        NS,
        [
            xmlsafe.text_element("CreateTimestamp", _timestamp()),
            xmlsafe.text_element("Code", code),
            xmlsafe.text_element("Description", description),
        ],
    )
    return Reply(status, content, {"Content-Type": content_type})


def fault(status: int, code: str, description: str) -> ReplyError:
    return ReplyError(fault_reply(status, code, description))


# Reason phrases that changed between Python versions, pinned so fault codes stay stable.
_PHRASES = {413: "Request Entity Too Large", 422: "Unprocessable Entity"}


def _http_fault(status: int, description: str | None = None) -> Reply:
    try:
        phrase = _PHRASES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = re.sub(r"[^A-Za-z]", "", phrase.title()) or "Error"
    return fault_reply(status, code, description or phrase)


class RadialDialect(Dialect):
    """The ``apiKey`` header on every call; faults as XML."""

    def __init__(self, api_key: str) -> None:
        self._key = api_key.encode()

    def check(self, request: ApiRequest) -> Reply | None:
        key = request.header("apikey")
        if key is None or not hmac.compare_digest(key.encode("latin-1"), self._key):
            return _http_fault(401, "Missing or invalid apiKey header")
        return None

    def fault(self, status: int) -> Reply:
        return _http_fault(status, f"Simulated fault (HTTP {status})")

    def too_large(self, limit: int) -> Reply:
        return _http_fault(413, f"The request body exceeds {limit} bytes")

    def http_error(self, status: int, detail: str) -> Reply:
        if status == 404:
            return _http_fault(404, "No such resource")
        if status == 405:
            return _http_fault(405, "Only POST is supported")
        return _http_fault(status, detail)

    def internal_error(self) -> Reply:
        return _http_fault(500)


class XmlGate(Gate):
    """simkit's gate always sends ``Content-Type: application/json`` on its own replies (faults,
    auth); a reply that names its own Content-Type then carries two. Keep the last one only."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        async def last_content_type_wins(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                types = [header for header in headers if header[0].lower() == b"content-type"]
                if len(types) > 1:
                    headers = [header for header in headers if header[0].lower() != b"content-type"]
                    message = {**message, "headers": [*headers, types[-1]]}  # type: ignore[typeddict-item]
            await send(message)

        await super().__call__(scope, receive, last_content_type_wins, app)


# --- reading request messages ----------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    request_id: str | None
    values: dict[str, str]  # element name -> trimmed text (leaf elements, nested ones flattened)
    attributes: dict[str, str]  # "Element@attr" -> value
    canonical: tuple[object, ...]
    reply_type: str


def _schema_error(description: str) -> ReplyError:
    return fault(400, "SchemaValidationException", description)


def _walk(element: xmlsafe.Element, rules: tuple[Rule, ...], out: Parsed) -> None:
    by_name = {rule.name: rule for rule in rules}
    seen: set[str] = set()
    for child in element.children:
        if child.namespace != NS:
            raise _schema_error(f"Element '{child.name}' must be in namespace {NS}")
        if child.name in NOT_SIMULATED:
            raise _schema_error(f"Element '{child.name}' is not supported by the simulator")
        rule = by_name.get(child.name)
        if rule is None:
            raise _schema_error(f"Unexpected element '{child.name}' in '{element.name}'")
        if child.name in seen:
            raise _schema_error(f"Element '{child.name}' appears more than once in '{element.name}'")
        seen.add(child.name)
        allowed = dict(rule.attributes)
        for attribute in child.attributes:
            if attribute not in allowed:
                raise _schema_error(f"Attribute '{attribute}' is not allowed on '{child.name}'")
        for attribute, required in rule.attributes:
            if required and attribute not in child.attributes:
                raise _schema_error(f"Attribute '{attribute}' is required on '{child.name}'")
            if attribute in child.attributes:
                out.attributes[f"{child.name}@{attribute}"] = child.attributes[attribute].strip()
        if rule.children:
            if child.text.strip():
                raise _schema_error(f"Element '{child.name}' must not contain text")
            _walk(child, rule.children, out)
            continue
        if child.children:
            raise _schema_error(f"Element '{child.name}' must not contain elements")
        text = child.text.strip()
        if len(text) < rule.min_length or (rule.max_length is not None and len(text) > rule.max_length):
            bounds = f"{rule.min_length}-{rule.max_length}" if rule.max_length else f"at least {rule.min_length}"
            raise _schema_error(f"Element '{child.name}' must be {bounds} characters long")
        out.values[child.name] = text
    for rule in rules:
        if rule.required and rule.name not in seen:
            raise _schema_error(f"Element '{rule.name}' is required in '{element.name}'")


def read_message(request: Request[Any, Any, Any], raw: bytes, spec: MessageSpec) -> Parsed:
    kind = media_type(request.headers.get("content-type"))
    if kind not in XML_TYPES:
        raise ReplyError(_http_fault(415, "Send the request as application/xml or text/xml"))
    if not raw.strip():
        raise fault(400, "InvalidXmlException", "The request body is empty")
    try:
        root = xmlsafe.parse(raw)
    except xmlsafe.XmlRefused as exc:
        raise fault(400, "InvalidXmlException", str(exc)) from None
    if root.namespace != NS:
        raise _schema_error(f"The root element must be in namespace {NS}")
    if root.name != spec.root:
        raise _schema_error(f"Expected root element '{spec.root}', found '{root.name}'")
    allowed = {"requestId", *spec.extra_root_attributes}
    for attribute in root.attributes:
        if attribute not in allowed:
            raise _schema_error(f"Attribute '{attribute}' is not allowed on '{root.name}'")
    request_id = root.attributes.get("requestId")
    if request_id is None and spec.request_id == "required":
        raise _schema_error(f"Attribute 'requestId' is required on '{root.name}'")
    if request_id is not None and not 1 <= len(request_id.strip()) <= REQUEST_ID_MAX:
        raise _schema_error(f"Attribute 'requestId' must be 1-{REQUEST_ID_MAX} characters long")
    if root.text.strip():
        raise _schema_error(f"Element '{root.name}' must not contain text")
    parsed = Parsed(request_id, {}, {}, root.canonical(), kind)
    _walk(root, spec.children, parsed)
    _check_values(parsed)
    return parsed


def _check_values(parsed: Parsed) -> None:
    is_token = parsed.attributes.get("PaymentAccountUniqueId@isToken")
    if is_token is not None:
        if is_token not in ("true", "false", "1", "0"):
            raise _schema_error("Attribute 'isToken' must be true or false")
        if is_token in ("true", "1"):
            raise fault(400, "TokenNotFoundException", "The token is unknown (the simulator holds raw PANs only)")
    for currency in (parsed.values.get("CurrencyCode"), parsed.attributes.get("Amount@currencyCode")):
        if currency is not None and currency not in CURRENCIES:
            raise _schema_error(f"'{currency}' is not a supported ISO 4217 currency code")
    amount = parsed.values.get("Amount")
    if amount is not None and not AMOUNT.match(amount):
        raise _schema_error(f"Amount '{amount}' must be a non-negative decimal with at most 2 fraction digits")
    tender_class = parsed.values.get("TenderClass")
    if tender_class is not None and tender_class not in ("PrivateLabelCreditCard", "CreditCard", "StoredValue"):
        raise _schema_error("TenderClass must be PrivateLabelCreditCard, CreditCard or StoredValue")


# --- replies ---------------------------------------------------------------------------------------


def _pan_element(pan: str) -> str:
    return xmlsafe.text_element("PaymentAccountUniqueId", pan, isToken="false")


def _payment_context(order_id: str, pan: str) -> str:
    return f"<PaymentContext>{xmlsafe.text_element('OrderId', order_id)}{_pan_element(pan)}</PaymentContext>"


def _xml_response(content: bytes, kind: str) -> Response[bytes]:
    return Response(content, status_code=200, media_type=kind)


def _store(store_id: str) -> Store:
    store = STORES.get(store_id)
    if store is None:
        raise fault(400, "TenderGatewayConfigurationException", f"The Store ID {store_id} is not configured")
    return store


# --- endpoints -------------------------------------------------------------------------------------


@post("/v1.0/stores/{store_id:str}/payments/storedvalue/{operation:str}/{tender_file:str}", status_code=200)
async def stored_value(
    request: Request[Any, Any, Any], sim: RadialSimulator, store_id: str, operation: str, tender_file: str
) -> Response[bytes]:
    tender, _, extension = tender_file.rpartition(".")
    if operation not in STORED_VALUE_OPERATIONS or extension != "xml" or not tender:
        raise ReplyError(_http_fault(404, "No such resource"))
    store = _store(store_id)
    if tender not in STORED_VALUE_TENDERS or tender not in store.tender_types:
        raise fault(
            400,
            "TenderGatewayConfigurationException",
            f"The Store ID {store_id} is not configured for the tender type {tender}",
        )
    parsed = read_message(request, await request.body(), MESSAGES[operation])
    pan, pin = parsed.values["PaymentAccountUniqueId"], parsed.values.get("Pin")
    root = REPLY_ROOTS[operation]

    if operation == "balance":
        currency = parsed.values["CurrencyCode"]
        async with sim.lock:
            result = sim.balance(tender, pan, pin, currency)
        content = xmlsafe.document(
            root,
            NS,
            [
                _pan_element(pan),
                xmlsafe.text_element("ResponseCode", result.code),
                xmlsafe.text_element("BalanceAmount", money(result.balance), currencyCode=currency),
            ],
        )
        return _xml_response(content, parsed.reply_type)

    order_id = parsed.values["OrderId"]
    amount = Decimal(parsed.values["Amount"])
    currency = parsed.attributes["Amount@currencyCode"]
    key = f"{store_id}:{parsed.request_id}"
    path = request.url.path
    async with sim.lock:
        try:
            stored = sim.stored_response(key, "POST", path, parsed.canonical)
        except IdempotencyKeyReused:
            raise fault(
                400, "DuplicateRequestIdException", "The requestId was already used for a different request"
            ) from None
        if stored is not None:
            return _xml_response(stored.content, parsed.reply_type)
        operate = sim.fund_and_activate if operation == "fundandactivate" else sim.cash_out
        outcome: Result = operate(tender, pan, pin, amount, currency)
        # What the operation moved: the amount on Success, nothing otherwise.
        moved = xmlsafe.text_element(
            "AmountFunded" if operation == "fundandactivate" else "AmountOut",
            money(amount if outcome.code == "Success" else Decimal(0)),
            currencyCode=currency,
        )
        if operation == "fundandactivate":
            # StoredValueFundAndActivateReplyType: PaymentContext, PaymentAccountUniqueId, Pin?,
            # ResponseCode, AmountFunded (the PIN is never echoed here).
            children = [
                _payment_context(order_id, pan),
                _pan_element(pan),
                xmlsafe.text_element("ResponseCode", outcome.code),
                moved,
            ]
        else:
            # StoredValueCashOutReplyType: PaymentContext, ResponseCode, AmountOut.
            children = [_payment_context(order_id, pan), xmlsafe.text_element("ResponseCode", outcome.code), moved]
        content = xmlsafe.document(root, NS, children)
        sim.idempotency[key] = StoredResponse("POST", path, parsed.canonical, 200, content)
    return _xml_response(content, parsed.reply_type)


@post("/v1.0/stores/{store_id:str}/payments/tendertype/lookup.xml", status_code=200)
async def tender_type_lookup(request: Request[Any, Any, Any], sim: RadialSimulator, store_id: str) -> Response[bytes]:
    store = _store(store_id)
    parsed = read_message(request, await request.body(), MESSAGES["lookup"])
    tender_type, code = sim.tender_type_lookup(
        store,
        parsed.values["PaymentAccountUniqueId"],
        parsed.values["TenderClass"],  # type: ignore[arg-type]
        parsed.values["CurrencyCode"],
    )
    # TenderType is optional in TenderTypeLookupReplyType and, when present, 2-4 characters
    # (TenderTypeType): a failed lookup leaves it out rather than sending it empty.
    children = [xmlsafe.text_element("TenderType", tender_type)] if tender_type else []
    children.append(xmlsafe.text_element("ResponseCode", code))
    content = xmlsafe.document("TenderTypeLookupReply", NS, children)
    return _xml_response(content, parsed.reply_type)


# --- app -------------------------------------------------------------------------------------------


def create_app(api_key: str, *, masked_headers: Iterable[str] = ("apikey",)) -> SimApp:
    """A fresh Radial Payments simulator with its own gift cards; ``api_key`` is the accepted ``apiKey``."""
    if not api_key:
        raise ValueError("api_key must not be empty")
    sim = RadialSimulator()
    dialect = RadialDialect(api_key)
    app = create_sim_app(
        core=sim,
        dialect=dialect,
        route_handlers=[stored_value, tender_type_lookup],
        logger_name="simulators.radial",
        masked_headers=masked_headers,
        max_body_bytes=MAX_BODY_BYTES,
    )
    # Same gate, but replies that name their own Content-Type (XML faults) keep only that one.
    app.gate = XmlGate(
        sim,
        dialect,
        is_api_path=app.gate.is_api_path,
        masked_headers=masked_headers,
        max_body_bytes=MAX_BODY_BYTES,
    )
    return app
