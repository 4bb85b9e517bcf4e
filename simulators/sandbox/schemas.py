"""Request bodies, validated strictly the way a picky real provider would.

Unknown fields, floats or strings for integers, and unknown currencies are all rejected, so a
gateway that sends sloppy requests fails its tests instead of passing by luck.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

CardState = Literal["registered", "active", "deactivated"]
HoldState = Literal["active", "captured", "released"]

# Amounts are already in minor units, so the exponents (JPY 0, KWD 3, the rest 2) only matter to
# the caller; they are listed in README.md.
Currency = Literal["USD", "EUR", "GBP", "JPY", "KWD", "CHF", "CAD"]

AmountMinor = Annotated[int, msgspec.Meta(ge=0)]
PositiveMinor = Annotated[int, msgspec.Meta(gt=0)]
NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
# \Z rather than $: Python's $ also matches before a trailing newline.
# Printed cards of other programmes carry upper-case alphanumeric numbers (8-20 characters).
CardNumber = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Z]{8,20}\Z")]
Pin = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4,8}\Z")]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class LookupRequest(_Strict):
    number: NonEmptyStr
    pin: str | None = None


class IssueRequest(_Strict):
    amount_minor: AmountMinor
    currency: Currency
    customer_ref: NonEmptyStr
    reference: str | None = None


class ActivateRequest(_Strict):
    amount_minor: AmountMinor
    currency: Currency
    customer_ref: str


class DeactivateRequest(_Strict):
    pin: str | None = None
    store_ref: str | None = None


class HoldRequest(_Strict):
    number: NonEmptyStr
    amount_minor: PositiveMinor
    currency: Currency
    pin: str | None = None
    reference: str | None = None


class CaptureRequest(_Strict):
    amount_minor: PositiveMinor


class ReleaseRequest(_Strict):
    """An empty JSON object: a release always frees the whole remaining amount."""


class RefundRequest(_Strict):
    amount_minor: PositiveMinor


class SimCardRequest(_Strict):
    number: CardNumber
    state: CardState
    amount_minor: AmountMinor
    currency: Currency
    pin: Pin | None = None
    customer_ref: str | None = None
