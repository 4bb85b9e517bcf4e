"""What NewStore sends and expects: its contracts, each a declaration the rest of the gateway reads.

A :class:`Contract` is one of NewStore's webhook APIs: its routes, its operations (request and
response types, which ones the idempotency key guards and in which field it travels), the
names its operations add to a template's context, what it checks before anything is sent, the
error codes an error rule may answer, and how a gateway error becomes its error body and status.

- :mod:`.giftcard` — Gift Card Provider Webhooks: balance, issue, activate, deactivate;
- :mod:`.payment` — Payment Provider Webhooks: create_instrument, capture, refund, revoke.

The engine, idempotency, lint, ``gateway test``, ``render``, ``schema`` and ``new`` know
operations only through :data:`OPERATIONS` and :data:`CONTRACTS`; a third NewStore contract is a
new module and one more entry in :data:`CONTRACTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import quote

import msgspec

from ..errors import RequestRejected, WebhookError
from ..language import jsonexact
from ..language.jsonexact import encode
from . import giftcard, payment
from .giftcard import ErrorBody


@dataclass(frozen=True)
class Operation:
    """One webhook of a contract.

    ``required`` lists the response fields a mapping must produce (dotted paths), so the loader
    can say early that a mapping's ``response`` misses one. ``route`` is the path after
    ``/{provider}``; ``path_param`` names the part of it that carries an id.
    """

    name: str
    contract: str
    request_type: type[msgspec.Struct]
    response_type: Any
    idempotent: bool
    required: tuple[str, ...]
    summary: str
    route: str
    example: Mapping[str, Any]
    key_field: str = "idempotence_key"
    path_param: str | None = None
    item_type: type[msgspec.Struct] | None = None  # the response is a list of these


@dataclass(frozen=True)
class Contract:
    name: str
    title: str
    operations: tuple[str, ...]
    # Litestar route templates (after /{provider}) -> the operation they serve; None: the route's
    # own `{operation}` parameter names it.
    routes: tuple[tuple[str, str | None], ...]
    # Names a template of these operations may read besides request, steps, vars, now, webhook_id.
    context_names: tuple[str, ...]
    context: Callable[[Operation, msgspec.Struct, Mapping[str, str]], dict[str, Any]]
    # Checks of the request alone, before the idempotency store is consulted (an empty key).
    admit: Callable[[Operation, msgspec.Struct, Mapping[str, str]], None]
    # Checks that depend on the instrument's state (amounts left), run only when the request
    # really runs: a duplicate gets the stored answer whatever its body says now.
    before_run: Callable[[Operation, msgspec.Struct, Mapping[str, str]], None]
    error_answer: Callable[[WebhookError, bool], tuple[int, dict[str, Any]]]
    error_codes: tuple[str, ...] | None  # what an error rule may answer; None: free text


# --- the gift card contract -----------------------------------------------------------------

def _giftcard_context(op: Operation, request: msgspec.Struct, path: Mapping[str, str]) -> dict[str, Any]:
    return {"idempotence_key": getattr(request, "idempotence_key", None)}


def _giftcard_admit(op: Operation, request: msgspec.Struct, path: Mapping[str, str]) -> None:
    key = getattr(request, "idempotence_key", None)
    if key is not None and not key.strip():
        # An empty key would turn idempotency off: two identical retries would issue two cards.
        raise RequestRejected(f"invalid `{op.name}` request: `idempotence_key` is empty; send a unique key, "
                              "or leave the field out - at `$.idempotence_key`")


def _giftcard_error(exc: WebhookError, retry_safe: bool) -> tuple[int, dict[str, Any]]:
    return exc.status, exc.body()


_GIFT_CARD_OPS = (
    Operation("balance", "gift_card", giftcard.BalanceRequest, giftcard.BalanceResponse, idempotent=False,
              required=("value", "currency"), summary="Return the balance of a card", route="/gift_card/balance",
              example={"identifier": {"number": "5h78k5367h09q34n22", "pin": "4125"},
                       "metadata": {"store_id": "some-store-identifier"}}),
    Operation("issue", "gift_card", giftcard.IssueRequest, giftcard.IssueResponse, idempotent=True,
              required=("identifier.number",), summary="Issue a new card", route="/gift_card/issue",
              example={"amount": {"value": 100, "currency": "USD"},
                       "customer": {"id": "34683bfjbfjbdfkbfk", "name": "Jay DoubleYou"},
                       "idempotence_key": "5kl5345b2hjj5k79"}),
    Operation("activate", "gift_card", giftcard.ActivateRequest, giftcard.ActivateResponse, idempotent=True,
              required=("identifier.number",), summary="Activate an existing card with an amount",
              route="/gift_card/activate",
              example={"card_number": "5h78k5367h09q34n22", "amount": {"value": 100, "currency": "USD"},
                       "customer": {"id": "64810476", "email": "jay_doubleyou@example.com", "name": "Jay Doubleyou"},
                       "idempotence_key": "6234h6k263bb589v0bnv3"}),
    Operation("deactivate", "gift_card", giftcard.DeactivateRequest, giftcard.DeactivateResponse, idempotent=True,
              required=(), summary="Deactivate a card, voiding its remaining balance", route="/gift_card/deactivate",
              example={"card_number": "5h78k5367h09q34n22", "pin": "1043", "store_id": "842840192840129841092",
                       "idempotence_key": "6234h6k263bb589v0bnv3"}),
)

GIFT_CARD = Contract(
    name="gift_card",
    title="Gift Card Provider Webhooks",
    operations=tuple(op.name for op in _GIFT_CARD_OPS),
    routes=(("/gift_card/{operation:str}", None),),
    context_names=("idempotence_key",),
    context=_giftcard_context,
    admit=_giftcard_admit,
    before_run=lambda op, request, path: None,
    error_answer=_giftcard_error,
    error_codes=None,
)


# --- the payment contract -------------------------------------------------------------------

def _payment_context(op: Operation, request: msgspec.Struct, path: Mapping[str, str]) -> dict[str, Any]:
    transactions = getattr(request, "transactions", None) or []
    avail = payment.available(transactions)
    return {
        "idempotency_key": getattr(request, "idempotency_key", None),
        "instrument_id": path.get("financial_instrument_id"),
        "available": {"capture": avail.capture, "refund": avail.refund, "currency": avail.currency},
    }


def _payment_admit(op: Operation, request: msgspec.Struct, path: Mapping[str, str]) -> None:
    key = getattr(request, "idempotency_key", None)
    if key is not None and not key.strip():
        raise RequestRejected(f"invalid `{op.name}` request: `idempotency_key` is empty - at `$.idempotency_key`")


def _payment_before_run(op: Operation, request: msgspec.Struct, path: Mapping[str, str]) -> None:
    if op.name not in ("capture", "refund"):
        return
    transactions = request.transactions  # type: ignore[attr-defined]
    instrument = path.get("financial_instrument_id")
    if not transactions:
        raise RequestRejected(f"`{op.name}` of instrument with no transactions: NewStore sends the instrument's "
                              "transactions with every capture and refund - at `$.transactions`",
                              error_code="instrument_error")
    avail = payment.available(transactions)
    args = request.arguments  # type: ignore[attr-defined]
    if avail.currency is not None and args.currency.upper() != avail.currency:
        raise RequestRejected(f"the {op.name} is in {args.currency.upper()} but the instrument is in {avail.currency}",
                              error_code="instrument_error")
    if op.name == "capture":
        if not avail.ever_capturable:
            return  # a pre-captured instrument (redeem at once): the mapping answers it
        if args.amount > avail.capture:
            raise RequestRejected(f"cannot capture {args.amount} of instrument `{instrument}`: "
                                  f"{avail.capture} is available for capture", error_code="instrument_error")
    elif args.amount > avail.refund:
        raise RequestRejected(f"cannot refund {args.amount} of instrument `{instrument}`: "
                              f"{avail.refund} is available for refund", error_code="instrument_error")


def _payment_error(exc: WebhookError, retry_safe: bool) -> tuple[int, dict[str, Any]]:
    """A gateway error as the Payment Provider Webhooks' error body.

    400 means NewStore will not retry; 500 that a retry with the same idempotency_key may work,
    which is only said where a retry cannot move money twice: nothing was sent, the provider
    asked for it (`retry: true` rules), or the operation is `retry_safe`.
    """
    code = exc.error_code
    details = dict(exc.details or {})
    details["gateway_error"] = code
    if exc.definitive:  # an error rule matched: the provider's definitive answer
        status, code = 400, code if code in payment.ERROR_CODES else "instrument_error"
    elif 400 <= exc.status < 500:
        status, code = exc.status, code if code in payment.ERROR_CODES else "failed_command"
    elif exc.status == 500:
        status, code = 500, "internal_error"
    elif code == "rate_limit" or (exc.status == 503 and code in payment.ERROR_CODES):
        status = 500  # a `retry: true` rule: the provider refused for now, nothing moved
    elif not exc.request_accepted:  # nothing reached the provider: retrying is safe
        status, code = (500, "retry_error") if code != "mapping_error" else (400, "internal_error")
    elif code == "request_in_progress":
        status, code = 500, "retry_error"
    else:  # the outcome is unknown
        status, code = (500, "retry_error") if retry_safe else (400, "psp_api_error")
    body: dict[str, Any] = {"error_code": code, "message": exc.message, "details": details}
    return status, body


def _transactions_example(amount: int, reason: str) -> list[dict[str, Any]]:
    return [{"payment_method": "gift_card", "instrument_id": "unique-psp-instrument-identifier-1234567890",
             "transaction_id": f"example-{reason}-12345", "capture_amount": amount, "refund_amount": 0,
             "currency": "USD", "reason": reason}]


_ACTION = "/financial_instruments/{financial_instrument_id:str}/"
_PAYMENT_OPS = (
    Operation("create_instrument", "payment", payment.CreateRequest, list[payment.Transaction], idempotent=True,
              required=(), summary="Create a financial instrument: reserve or take the amount",
              route="/financial_instruments", key_field="idempotency_key", item_type=payment.Transaction,
              example={"account_id": "9c849222-3bca-4881-9c68-2e91da34ab21",
                       "idempotency_key": "authorized.987600036172980-9c849222-3bca-4881-9c68-2e91da34ab21",
                       "retry_id": "4b1c7a0e-0f6f-4bb7-9d43-d1f0a1a39b16",
                       "arguments": {"amount": 100, "currency": "USD", "payment_method": "gift_card",
                                     "instrument": {"identifier": "5h78k5367h09q34n22", "type": "token"}},
                       "metadata": {}}),
    Operation("capture", "payment", payment.AmountRequest, list[payment.Transaction], idempotent=True,
              required=(), summary="Capture funds of an instrument", route=_ACTION + "_capture",
              key_field="idempotency_key", path_param="financial_instrument_id", item_type=payment.Transaction,
              example={"account_id": "af8e9f4a-b6ec-4677-a9a0-1ff199a8b2ef",
                       "instrument_id": "unique-psp-instrument-identifier-1234567890",
                       "transactions": _transactions_example(100, "authorization"),
                       "idempotency_key": "373fa237-d70e-4177-8139-41354a21c356",
                       "arguments": {"amount": 100, "currency": "USD"}, "metadata": {}}),
    Operation("refund", "payment", payment.AmountRequest, list[payment.Transaction], idempotent=True,
              required=(), summary="Refund captured funds to the instrument", route=_ACTION + "_refund",
              key_field="idempotency_key", path_param="financial_instrument_id", item_type=payment.Transaction,
              example={"account_id": "af8e9f4a-b6ec-4677-a9a0-1ff199a8b2ef",
                       "instrument_id": "unique-psp-instrument-identifier-1234567890",
                       "transactions": _transactions_example(100, "authorization")
                       + [{"instrument_id": "unique-psp-instrument-identifier-1234567890",
                           "transaction_id": "example-capture-12345", "capture_amount": -100,
                           "refund_amount": 100, "currency": "USD", "reason": "capture"}],
                       "idempotency_key": "c5b7ad3e-2a4f-4e1b-9a55-7f0e3d2c1b0a",
                       "arguments": {"amount": 100, "currency": "USD"}, "metadata": {"original_operation": "refund"}}),
    Operation("revoke", "payment", payment.RevokeRequest, list[payment.Transaction], idempotent=True,
              required=(), summary="Revoke (void) an instrument: release what is left", route=_ACTION + "_revoke",
              key_field="idempotency_key", path_param="financial_instrument_id", item_type=payment.Transaction,
              example={"account_id": "af8e9f4a-b6ec-4677-a9a0-1ff199a8b2ef",
                       "instrument_id": "unique-psp-instrument-identifier-1234567890",
                       "transactions": _transactions_example(100, "authorization"),
                       "idempotency_key": "0d6c1f52-8b8e-4d1e-a4c4-2f3f9e6b7a10", "metadata": {}}),
)

PAYMENT = Contract(
    name="payment",
    title="Payment Provider Webhooks",
    operations=tuple(op.name for op in _PAYMENT_OPS),
    routes=tuple((op.route, op.name) for op in _PAYMENT_OPS),
    context_names=("idempotency_key", "instrument_id", "available"),
    context=_payment_context,
    admit=_payment_admit,
    before_run=_payment_before_run,
    error_answer=_payment_error,
    error_codes=payment.ERROR_CODES,
)

CONTRACTS: dict[str, Contract] = {c.name: c for c in (GIFT_CARD, PAYMENT)}
OPERATIONS: dict[str, Operation] = {op.name: op for op in (*_GIFT_CARD_OPS, *_PAYMENT_OPS)}
# NewStore's own request examples, one per operation (`gateway render` uses them by default).
EXAMPLES: dict[str, Mapping[str, Any]] = {name: op.example for name, op in OPERATIONS.items()}


def contract_of(operation: str) -> Contract:
    return CONTRACTS[OPERATIONS[operation].contract]


def path_for(operation: str, provider: str, params: Mapping[str, str] | None = None) -> str:
    """The URL path NewStore calls for ``operation`` of ``provider`` (``gateway test``, docs)."""
    route = OPERATIONS[operation].route
    for name, value in (params or {}).items():
        route = route.replace("{" + name + ":str}", quote(str(value), safe=""))
    return f"/{provider}{route}"


# JSON numbers decode to Decimal, never to float: money stays exact end to end.
_decoders = {name: jsonexact.decoder(op.request_type) for name, op in OPERATIONS.items()}


def decode_request(operation: str, body: bytes) -> msgspec.Struct:
    """Decode and validate one webhook body; raises ``msgspec.DecodeError``/``ValidationError``."""
    return _decoders[operation].decode(body)


def build_response(operation: str, data: object) -> Any:
    """Convert what a mapping produced into the operation's response type (validating it)."""
    return msgspec.convert(data, OPERATIONS[operation].response_type, from_attributes=True)


__all__ = ["CONTRACTS", "OPERATIONS", "EXAMPLES", "Contract", "Operation", "ErrorBody", "contract_of", "path_for",
           "decode_request", "build_response", "encode"]
