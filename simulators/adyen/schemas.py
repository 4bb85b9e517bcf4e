"""Request bodies of the Adyen Stored Value API v46, decoded strictly.

Field names and types follow Adyen's OpenAPI file ``StoredValueService-v46.json``. Two deliberate
tightenings, so a gateway's sloppy request fails here rather than in production: unknown fields
are rejected (also inside ``paymentMethod``, which the spec types as a string map: only ``type``,
``number`` and ``securityCode`` are accepted), and integers must be JSON integers.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
Reference = Annotated[str, msgspec.Meta(max_length=80)]
Store = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
CurrencyCode = Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
ShopperInteraction = Literal["Ecommerce", "ContAuth", "Moto", "POS"]
CardStatus = Literal["pending", "active", "inactive"]
Brand = Literal["givex", "svs", "valuelink"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class Amount(_Strict, kw_only=True):
    currency: CurrencyCode
    value: Int64


class PaymentMethod(_Strict, kw_only=True):
    # Field names are Adyen's: camelCase, and the PIN is `securityCode`.
    type: str
    number: str | None = None
    securityCode: str | None = None


class _Request(_Strict, kw_only=True):
    merchantAccount: str
    reference: Reference
    paymentMethod: PaymentMethod
    recurringDetailReference: str | None = None
    shopperInteraction: ShopperInteraction | None = None
    shopperReference: str | None = None
    store: Store | None = None


class BalanceCheckRequest(_Request, kw_only=True):
    amount: Amount | None = None


class IssueRequest(_Request, kw_only=True):
    amount: Amount | None = None


class LoadRequest(_Request, kw_only=True):
    amount: Amount
    loadType: Literal["merchandiseReturn", "load"] | None = None


class StatusChangeRequest(_Request, kw_only=True):
    status: Literal["active", "inactive"]
    amount: Amount | None = None


class VoidRequest(_Strict, kw_only=True):
    merchantAccount: str
    originalReference: str
    reference: Reference | None = None
    store: Store | None = None
    tenderReference: str | None = None
    uniqueTerminalId: str | None = None


class SimCardRequest(_Strict, kw_only=True):
    """``POST /_sim/cards``: adds or replaces a card (the simulator's own control format)."""

    type: Brand
    number: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{8,30}\Z")]
    status: CardStatus
    value: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")]
    securityCode: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{3,8}\Z")] | None = None
