"""Request bodies of Square's Gift Cards and Gift Card Activities APIs, decoded strictly.

Field names and types follow Square's API reference (``square/connect-api-specification``
``api.json``, the SDKs' model docs). Deliberate tightenings: unknown fields are rejected, integers
must be JSON integers, ``Money`` needs both ``amount`` and ``currency``, and read-only fields
(``id``, ``state``, ``balance_money``...) cannot be sent.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

INT64_MAX = 2**63 - 1

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=INT64_MAX)]
IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
InstrumentId = Annotated[str, msgspec.Meta(max_length=255)]

GiftCardType = Literal["PHYSICAL", "DIGITAL"]
GanSource = Literal["SQUARE", "OTHER"]
GiftCardState = Literal["ACTIVE", "DEACTIVATED", "BLOCKED", "PENDING"]
ActivityType = Literal[
    "ACTIVATE",
    "LOAD",
    "REDEEM",
    "CLEAR_BALANCE",
    "DEACTIVATE",
    "ADJUST_INCREMENT",
    "ADJUST_DECREMENT",
    "REFUND",
    "UNLINKED_ACTIVITY_REFUND",
    "IMPORT",
    "BLOCK",
    "UNBLOCK",
    "IMPORT_REVERSAL",
    "TRANSFER_BALANCE_FROM",
    "TRANSFER_BALANCE_TO",
]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True):
    pass


class Money(_Strict, kw_only=True):
    amount: Int64
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)]


class GiftCardInput(_Strict, kw_only=True):
    type: GiftCardType
    gan_source: GanSource | None = None
    gan: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None


class CreateGiftCardRequest(_Strict, kw_only=True):
    idempotency_key: IdempotencyKey
    location_id: NonEmpty
    gift_card: GiftCardInput


class RetrieveFromGanRequest(_Strict, kw_only=True):
    gan: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class FundingDetails(_Strict, kw_only=True):
    """ACTIVATE and LOAD details (same fields)."""

    amount_money: Money | None = None
    order_id: str | None = None
    line_item_uid: str | None = None
    reference_id: str | None = None
    buyer_payment_instrument_ids: list[InstrumentId] | None = None


class RedeemDetails(_Strict, kw_only=True):
    """GiftCardActivityRedeem as a custom payment processing system sends it.

    ``payment_id`` and ``status`` are read-only in api.json (Square fills them for payments it
    processed; API redemptions are always ``COMPLETED``), so they are refused like any unknown field.
    """

    amount_money: Money
    reference_id: str | None = None


class RefundDetails(_Strict, kw_only=True):
    """GiftCardActivityRefund: ``redeem_activity_id`` and ``amount_money`` are nullable in the schema
    but required when creating a REFUND from a custom payment processing system (checked in state.py);
    ``payment_id`` is read-only."""

    redeem_activity_id: str | None = None
    amount_money: Money | None = None
    reference_id: str | None = None


class AdjustIncrementDetails(_Strict, kw_only=True):
    amount_money: Money
    reason: Literal["COMPLIMENTARY", "SUPPORT_ISSUE", "TRANSACTION_VOIDED"]


class AdjustDecrementDetails(_Strict, kw_only=True):
    amount_money: Money
    reason: Literal["SUSPICIOUS_ACTIVITY", "BALANCE_ACCIDENTALLY_INCREASED", "SUPPORT_ISSUE", "PURCHASE_WAS_REFUNDED"]


class ClearBalanceDetails(_Strict, kw_only=True):
    reason: Literal["SUSPICIOUS_ACTIVITY", "REUSE_GIFTCARD", "UNKNOWN_REASON"]


class DeactivateDetails(_Strict, kw_only=True):
    reason: Literal["SUSPICIOUS_ACTIVITY", "UNKNOWN_REASON", "CHARGEBACK_DEACTIVATE"]


class GiftCardActivityInput(_Strict, kw_only=True):
    type: ActivityType
    location_id: NonEmpty
    gift_card_id: NonEmpty | None = None
    gift_card_gan: NonEmpty | None = None
    activate_activity_details: FundingDetails | None = None
    load_activity_details: FundingDetails | None = None
    redeem_activity_details: RedeemDetails | None = None
    clear_balance_activity_details: ClearBalanceDetails | None = None
    deactivate_activity_details: DeactivateDetails | None = None
    adjust_increment_activity_details: AdjustIncrementDetails | None = None
    adjust_decrement_activity_details: AdjustDecrementDetails | None = None
    refund_activity_details: RefundDetails | None = None


class CreateGiftCardActivityRequest(_Strict, kw_only=True):
    idempotency_key: IdempotencyKey
    gift_card_activity: GiftCardActivityInput


class SimCardRequest(_Strict, kw_only=True):
    """``POST /_sim/cards``: adds or replaces a gift card (the simulator's own control format)."""

    gan: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{8,20}\Z")]
    state: GiftCardState
    amount: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")] | None = None  # default: the seller's
    type: GiftCardType = "DIGITAL"
    gan_source: GanSource = "SQUARE"
