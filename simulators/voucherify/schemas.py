"""Request bodies of the Voucherify endpoints the simulator implements, decoded strictly.

Field names follow ``voucherifyio/voucherify-openapi`` (``documentation/openapi/vouchers.json``:
``VouchersCreateWithSpecificCodeRequestBody``, ``VouchersCreateRequestBody``,
``VouchersBalanceUpdateRequestBody``). Deliberate tightenings: unknown fields are rejected, money is
an integer in cents (the spec types ``gift.amount`` as a number but documents it as "multiplied by
100"), read-only fields (``gift.balance``, ``id``...) cannot be sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

# Cents; a generous upper bound keeps arithmetic well inside int64.
Cents = Annotated[int, msgspec.Meta(ge=0, le=10**13)]
SignedCents = Annotated[int, msgspec.Meta(ge=-(10**13), le=10**13)]
Text = Annotated[str, msgspec.Meta(max_length=1000)]

VoucherType = Literal["GIFT_VOUCHER", "DISCOUNT_VOUCHER", "LOYALTY_CARD"]
GiftEffect = Literal["APPLY_TO_ORDER", "APPLY_TO_ITEMS"]

# Documented request fields the simulator does not model: sent, they give a 400 saying so (rather
# than "unknown field", which would wrongly suggest the real API refuses them).
NOT_SIMULATED = (
    "campaign",
    "campaign_id",
    "category_id",
    "validity_timeframe",
    "validity_day_of_week",
    "validity_hours",
    "validation_rules",
    "redemption",
    "loyalty_card",
    "discount",
)


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class GiftInput(_Strict):
    amount: Cents
    effect: GiftEffect | None = None


class CreateVoucherBody(_Strict):
    """``POST /v1/vouchers/{code}``."""

    type: VoucherType | None = None
    gift: GiftInput | None = None
    active: bool | None = None
    category: Text | None = None
    additional_info: Text | None = None
    metadata: dict[str, Any] | None = None
    start_date: str | None = None
    expiration_date: str | None = None
    # Documented, not simulated (see NOT_SIMULATED).
    campaign: Any = msgspec.UNSET
    campaign_id: Any = msgspec.UNSET
    category_id: Any = msgspec.UNSET
    validity_timeframe: Any = msgspec.UNSET
    validity_day_of_week: Any = msgspec.UNSET
    validity_hours: Any = msgspec.UNSET
    validation_rules: Any = msgspec.UNSET
    redemption: Any = msgspec.UNSET
    loyalty_card: Any = msgspec.UNSET
    discount: Any = msgspec.UNSET


class CodeConfig(_Strict):
    length: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    charset: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    prefix: Text | None = None
    postfix: Text | None = None
    pattern: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None


class GenerateVoucherBody(CreateVoucherBody):
    """``POST /v1/vouchers``: the same, plus an optional ``code`` or ``code_config``."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    code_config: CodeConfig | None = None


class BalanceBody(_Strict):
    """``POST /v1/vouchers/{code}/balance`` (Adjust Voucher Balance)."""

    amount: SignedCents
    source_id: Text | None = None
    reason: Text | None = None


class SimVoucherRequest(_Strict):
    """``POST /_sim/cards``: adds or replaces a gift voucher (the simulator's own control format)."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    balance: Cents
    amount: Cents | None = None  # lifetime income; defaults to `balance`
    active: bool = True
    expiration_date: str | None = None
    start_date: str | None = None


# --- redemptions (documentation/openapi/redemptions.json, RedemptionsRedeemRequestBody) -------------

# Documented request fields the simulator does not model, per object: sent, they give a 400 saying
# so (a real API would accept them).
REDEEM_NOT_SIMULATED = ("session", "options")
ORDER_NOT_SIMULATED = (
    "initial_amount",
    "discount_amount",
    "items",
    "customer",
    "referrer",
    "customer_id",
    "referrer_id",
    "object",
    "created_at",
    "updated_at",
)
CUSTOMER_NOT_SIMULATED = ("address", "phone", "birthday", "birthdate", "description", "object")

Credits = Annotated[int, msgspec.Meta(ge=1, le=10**13)]
OrderStatus = Literal["CREATED", "PAID", "CANCELED", "FULFILLED"]


class RedeemableGift(_Strict):
    credits: Credits | None = None


class Redeemable(_Strict):
    """One item of ``redeemables``: ``{object, id, gift?, reward?}``."""

    object: Literal["voucher", "promotion_tier", "promotion_stack"]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    gift: RedeemableGift | None = None
    reward: Any = msgspec.UNSET  # documented (loyalty rewards), not simulated


class RedeemOrder(_Strict):
    """The ``Order`` schema, the part a gift card payment uses."""

    id: Text | None = None
    source_id: Text | None = None
    status: OrderStatus | None = None
    amount: Annotated[int, msgspec.Meta(ge=0, le=10**13)] | None = None
    metadata: dict[str, Any] | None = None
    initial_amount: Any = msgspec.UNSET
    discount_amount: Any = msgspec.UNSET
    items: Any = msgspec.UNSET
    customer: Any = msgspec.UNSET
    referrer: Any = msgspec.UNSET
    customer_id: Any = msgspec.UNSET
    referrer_id: Any = msgspec.UNSET
    object: Any = msgspec.UNSET
    created_at: Any = msgspec.UNSET
    updated_at: Any = msgspec.UNSET


class RedeemCustomer(_Strict):
    """The ``Customer`` schema, identity fields only."""

    id: Text | None = None
    source_id: Text | None = None
    name: Text | None = None
    email: Text | None = None
    metadata: dict[str, Any] | None = None
    address: Any = msgspec.UNSET
    phone: Any = msgspec.UNSET
    birthday: Any = msgspec.UNSET
    birthdate: Any = msgspec.UNSET
    description: Any = msgspec.UNSET
    object: Any = msgspec.UNSET


class RedeemBody(_Strict):
    """``POST /v1/redemptions`` (Redeem Stackable Discounts)."""

    redeemables: Annotated[list[Redeemable], msgspec.Meta(min_length=1, max_length=30)]
    order: RedeemOrder | None = None
    customer: RedeemCustomer | None = None
    tracking_id: Text | None = None
    metadata: dict[str, Any] | None = None
    session: Any = msgspec.UNSET
    options: Any = msgspec.UNSET


class RollbackBody(_Strict):
    """``POST /v1/redemptions/{id}/rollback(s)`` (RedemptionsRollbackCreateRequestBody)."""

    reason: Text | None = None
    tracking_id: Text | None = None
    customer: RedeemCustomer | None = None
    order: RedeemOrder | None = None
    metadata: dict[str, Any] | None = None
