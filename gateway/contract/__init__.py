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
