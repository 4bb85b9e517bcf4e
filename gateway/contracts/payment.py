"""NewStore's Payment Provider Webhooks (v0), the part a gift card PSP serves, as msgspec Structs.

Create financial instrument, capture, refund and revoke: every request carries an
``idempotency_key`` (the same response for the same key, whatever the body), every success is a
list of transactions, every failure ``{error_code, message, details}`` with ``error_code`` from
a closed list. A transaction's ``capture_amount`` and ``refund_amount`` are *changes* to what is
available for capture and for refund; NewStore sends the instrument's transactions with each
capture, refund and revoke, so what is still available is their sum and the gateway keeps no
state of its own (:func:`available`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from ..language import money
from .giftcard import Base, Currency, Money, NonEmpty, SignedMoney, _non_negative_number

ERROR_CODES = ("internal_error", "retry_error", "instrument_error", "fraud_error", "rate_limit", "failed_command",
               "psp_api_error")
Reason = Literal["authorization", "revoke", "refund", "capture"]


class Instrument(Base):
    type: Literal["token", "authorized", "captured"]
    identifier: NonEmpty  # e.g. the gift card number


def _checked_amount(value: Any, currency: str, field: str) -> Decimal:
    value = _non_negative_number(value, field)
    try:
        places = money.exponent(currency)
    except money.MoneyError as exc:
        raise ValueError(f"`currency`: {exc}") from None
    if money.decimal_places(value) > places:
        raise ValueError(f"`{field}` has more decimal places than {currency.upper()} allows ({places})")
    return value


class AmountArguments(Base):
    """Capture and refund: an amount > 0 with no more decimals than its currency has."""

    amount: Money
    currency: Currency

    def __post_init__(self) -> None:
        self.amount = _checked_amount(self.amount, self.currency, "amount")
        if self.amount <= 0:
            raise ValueError("`amount` must be greater than 0")


class CreateArguments(AmountArguments):
    instrument: Instrument
    payment_method: str


class RevokeArguments(Base):
    """A revoke's arguments are optional: "the amount and currency are those of the instrument"."""

    amount: Money = None
    currency: str | None = None

    def __post_init__(self) -> None:
        if self.amount is not None:
            self.amount = _non_negative_number(self.amount, "amount")


class Transaction(Base):
    transaction_id: NonEmpty
    instrument_id: NonEmpty
    currency: Currency
    capture_amount: SignedMoney = Decimal(0)
    refund_amount: SignedMoney = Decimal(0)
    reason: Reason | None = None
    metadata: dict[str, Any] | None = None
    payment_method: str | None = None
    payment_wallet: str | None = None
    created_at: str | None = None
    processed_at: str | None = None

    def __post_init__(self) -> None:
        self.capture_amount = _signed(self.capture_amount, "capture_amount")
        self.refund_amount = _signed(self.refund_amount, "refund_amount")


class CreateRequest(Base):
    account_id: str
    idempotency_key: str
    retry_id: str
    arguments: CreateArguments
    metadata: dict[str, Any] | None = None


class AmountRequest(Base):
    """Capture and refund."""

    account_id: str
    transactions: list[Transaction]
    idempotency_key: str
    arguments: AmountArguments
    instrument_id: str | None = None
    retry_id: str | None = None
    metadata: dict[str, Any] | None = None


class RevokeRequest(Base):
    account_id: str
    transactions: list[Transaction]
    idempotency_key: str
    arguments: RevokeArguments | None = None
    instrument_id: str | None = None
    retry_id: str | None = None
    metadata: dict[str, Any] | None = None


class ErrorBody(Base):
    error_code: Literal[ERROR_CODES]  # type: ignore[valid-type]
    message: Annotated[str, msgspec.Meta(min_length=1)]
    details: dict[str, Any] | None = None


class Available(msgspec.Struct, frozen=True):
    """What an instrument's transactions leave: ``capture`` and ``refund`` are sums of changes."""

    capture: Decimal
    refund: Decimal
    currency: str | None
    ever_capturable: bool  # anything was ever available for capture (false: a pre-captured instrument)


def available(transactions: list[Transaction]) -> Available:
    capture = sum((t.capture_amount for t in transactions), Decimal(0))
    refund = sum((t.refund_amount for t in transactions), Decimal(0))
    currencies = {t.currency.upper() for t in transactions}
    return Available(capture, refund, currencies.pop() if len(currencies) == 1 else None,
                     any(t.capture_amount > 0 for t in transactions))


def _signed(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"`{field}` must be a number")
    value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not value.is_finite():
        raise ValueError(f"`{field}` must be a finite number")
    try:
        money.check_bounds(abs(value))
    except money.MoneyError as exc:
        raise ValueError(f"`{field}`: {exc}") from None
    return value
