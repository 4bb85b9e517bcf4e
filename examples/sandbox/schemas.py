"""Request bodies, validated strictly the way a picky real provider would.

Unknown fields, floats or strings for integers, and unknown currencies are all rejected, so a
gateway that sends sloppy requests fails its tests instead of passing by luck.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from .state import CardState, FaultMode

# Amounts are already in minor units, so the exponents (JPY 0, KWD 3, the rest 2) only matter to
# the caller; they are listed in README.md.
Currency = Literal["USD", "EUR", "GBP", "JPY", "KWD", "CHF", "CAD"]

AmountMinor = Annotated[int, msgspec.Meta(ge=0)]
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


class FaultRequest(_Strict):
    mode: FaultMode
    times: Annotated[int, msgspec.Meta(ge=1)] = 1
    seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] | None = None
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] | None = None

    def __post_init__(self) -> None:
        # msgspec turns a ValueError raised here into a ValidationError, hence a 400.
        if (self.mode == "delay") != (self.seconds is not None):
            raise ValueError("`seconds` is required for mode 'delay' and only allowed there")
        if (self.mode == "status") != (self.status is not None):
            raise ValueError("`status` is required for mode 'status' and only allowed there")


class SimCardRequest(_Strict):
    number: CardNumber
    state: CardState
    amount_minor: AmountMinor
    currency: Currency
    pin: Pin | None = None
    customer_ref: str | None = None

