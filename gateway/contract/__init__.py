"""What NewStore sends and expects: the operations registry.

The engine knows operations only through :data:`OPERATIONS`; adding NewStore's payment
provider webhooks later is a new contract module, not an engine change.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec

from . import giftcard
from .giftcard import ErrorBody


@dataclass(frozen=True)
class Operation:
    """One webhook of the contract.

    ``required`` lists the response fields a mapping must produce (dotted paths), so the
    loader can say early that a mapping's ``response`` misses one.
    """

    name: str
    request_type: type[msgspec.Struct]
    response_type: type[msgspec.Struct]
    idempotent: bool
    required: tuple[str, ...]
    summary: str


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            "balance",
            giftcard.BalanceRequest,
            giftcard.BalanceResponse,
            idempotent=False,
            required=("value", "currency"),
            summary="Return the balance of a card",
        ),
        Operation(
            "issue",
            giftcard.IssueRequest,
            giftcard.IssueResponse,
            idempotent=True,
            required=("identifier.number",),
            summary="Issue a new card",
        ),
        Operation(
            "activate",
            giftcard.ActivateRequest,
            giftcard.ActivateResponse,
            idempotent=True,
            required=("identifier.number",),
            summary="Activate an existing card with an amount",
        ),
        Operation(
            "deactivate",
            giftcard.DeactivateRequest,
            giftcard.DeactivateResponse,
            idempotent=True,
            required=(),
            summary="Deactivate a card, voiding its remaining balance",
        ),
    )
}

# NewStore's own request examples, one per operation (`gateway render` uses them by default).
EXAMPLES: dict[str, dict] = {
    "balance": {"identifier": {"number": "5h78k5367h09q34n22", "pin": "4125"}, "metadata": {"store_id": "some-store-identifier"}},
    "issue": {"amount": {"value": 100, "currency": "USD"}, "customer": {"id": "34683bfjbfjbdfkbfk", "name": "Jay DoubleYou"},
              "idempotence_key": "5kl5345b2hjj5k79"},
    "activate": {"card_number": "5h78k5367h09q34n22", "amount": {"value": 100, "currency": "USD"},
                 "customer": {"id": "64810476", "email": "jay_doubleyou@example.com", "name": "Jay Doubleyou"},
                 "idempotence_key": "6234h6k263bb589v0bnv3"},
    "deactivate": {"card_number": "5h78k5367h09q34n22", "pin": "1043", "store_id": "842840192840129841092",
                   "idempotence_key": "6234h6k263bb589v0bnv3"},
}

# JSON numbers decode to Decimal, never to float: money stays exact end to end.
_decoders = {
    name: msgspec.json.Decoder(op.request_type, float_hook=Decimal) for name, op in OPERATIONS.items()
}
_encoder = msgspec.json.Encoder(decimal_format="number")


def decode_request(operation: str, body: bytes) -> msgspec.Struct:
    """Decode and validate one webhook body; raises ``msgspec.DecodeError``/``ValidationError``."""
    return _decoders[operation].decode(body)


def build_response(operation: str, data: object) -> msgspec.Struct:
    """Convert what a mapping produced into the operation's response type (validating it)."""
    return msgspec.convert(data, OPERATIONS[operation].response_type, from_attributes=True)


def encode(value: object) -> bytes:
    return _encoder.encode(value)


__all__ = ["OPERATIONS", "Operation", "ErrorBody", "decode_request", "build_response", "encode"]
