"""NewStore's gift card provider webhooks (Gift Card Provider Webhooks v0), as msgspec Structs.

These types mirror NewStore's published OpenAPI description field by field: names, required
fields, ``minLength: 1``, ``minimum: 0`` and three-letter currencies. Inbound requests are
decoded liberally about extra fields (NewStore may add some) but strictly about types; every
success body the gateway sends is converted into the operation's response type first, so a
mapping cannot answer NewStore with a body the spec does not allow.

Money is ``Decimal`` from decoding to encoding: the decoder turns JSON numbers into ``Decimal``
(see ``language.jsonexact``), never into ``float``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from ..language import money

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Currency = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=3,
        pattern="^[A-Za-z]{3}$",
        description="ISO 4217 alpha-3 currency code",
    ),
]
# Money fields are `Any` to msgspec (each type's __post_init__ turns them into an exact Decimal);
# these say what they are in the JSON Schema, which `/schema` publishes.
Money = Annotated[Any, msgspec.Meta(extra_json_schema={"type": "number", "minimum": 0})]
SignedMoney = Annotated[Any, msgspec.Meta(extra_json_schema={"type": "number"})]


class Base(msgspec.Struct, omit_defaults=True, kw_only=True):
    """Contract types: unknown fields are ignored on input, ``None`` fields are left out on output."""


class Amount(Base):
    """A monetary amount. ``value`` is a JSON number >= 0, held as ``Decimal``.

    Checked when decoded, before any provider call: the currency is an ISO 4217 code and the
    value has no more decimal places than that currency has (10.005 USD is refused, not rounded).
    """

    value: Money
    currency: Currency

    def __post_init__(self) -> None:
        self.value = _non_negative_number(self.value, "value")
        try:
            places = money.exponent(self.currency)
        except money.MoneyError as exc:
            raise ValueError(f"`currency`: {exc}") from None
        if money.decimal_places(self.value) > places:
            raise ValueError(f"`value` has more decimal places than {self.currency.upper()} allows ({places})")


class Identifier(Base):
    number: NonEmpty
    pin: str | None = None


class Customer(Base):
    id: NonEmpty
    email: str | None = None
    name: str | None = None
    greeting_name: str | None = None


# --- requests -----------------------------------------------------------------------------


class BalanceRequest(Base):
    identifier: Identifier
    metadata: dict[str, Any] | None = None


class IssueRequest(Base):
    amount: Amount
    customer: Customer
    metadata: dict[str, Any] | None = None
    idempotence_key: str | None = None


class ActivateRequest(Base):
    card_number: NonEmpty
    amount: Amount
    customer: Customer
    metadata: dict[str, Any] | None = None
    idempotence_key: str | None = None


class DeactivateRequest(Base):
    card_number: NonEmpty
    pin: str | None = None
    store_id: str | None = None
    idempotence_key: str | None = None


# --- responses ----------------------------------------------------------------------------


class BalanceResponse(Base):
    value: Money
    currency: Currency

    def __post_init__(self) -> None:
        self.value = _non_negative_number(self.value, "value")


class IssueResponse(Base):
    identifier: Identifier
    amount: Amount | None = None
    customer: Customer | None = None  # deprecated in the spec, still allowed
    metadata: dict[str, Any] | None = None
    idempotence_key: str | None = None


class ActivateResponse(Base):
    identifier: Identifier
    metadata: dict[str, Any] | None = None


class DeactivateResponse(Base):
    deactivated_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.deactivated_at is not None and self.deactivated_at.tzinfo is None:
            raise ValueError("`deactivated_at` must carry a timezone (RFC 3339)")


class ErrorBody(Base):
    """The Error body every operation documents for its failures."""

    error_code: str
    message: str
    request_accepted: bool
    details: dict[str, Any] | None = None


def _non_negative_number(value: Any, field: str) -> Decimal:
    # JSON numbers arrive as int or Decimal (the decoder's float_hook); a bool is an int in
    # Python but not a number in JSON, and a string is never a number here.
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"`{field}` must be a number, got {_json_type(value)}")
    # repr() of a float is its shortest round-tripping form: 0.1 becomes Decimal("0.1").
    value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not value.is_finite() or value < 0:
        raise ValueError(f"`{field}` must be a number >= 0")
    try:
        money.check_bounds(value)
    except money.MoneyError as exc:
        raise ValueError(f"`{field}`: {exc}") from None
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, float):
        return "number"
    return type(value).__name__
