"""In-memory state of the simulated Square seller: locations, gift cards, activities, business rules.

Square answers a refused operation with an HTTP error (``{"errors": [...]}``), not with a 200 and
a result code: business outcomes here are :class:`Outcome` objects with their status, so they can
be stored for idempotent replay like successes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from simulators.simkit import SimCore

from .schemas import (
    AdjustDecrementDetails,
    AdjustIncrementDetails,
    ClearBalanceDetails,
    DeactivateDetails,
    FundingDetails,
    GanSource,
    GiftCardActivityInput,
    GiftCardInput,
    GiftCardState,
    GiftCardType,
    RedeemDetails,
    RefundDetails,
    SimCardRequest,
)

SEED_TIMESTAMP = "2024-01-01T00:00:00.000Z"
ISSUED_GAN_PREFIX = "7783320"
CUSTOM_GAN = re.compile(r"^[A-Za-z0-9]{8,20}\Z")

# Activity types Square manages itself; the API refuses to create them.
SQUARE_MANAGED = frozenset(
    {"IMPORT", "BLOCK", "UNBLOCK", "IMPORT_REVERSAL", "TRANSFER_BALANCE_FROM", "TRANSFER_BALANCE_TO"}
)
# Creatable activity types this simulator does not implement.
NOT_SIMULATED = frozenset({"UNLINKED_ACTIVITY_REFUND"})
DETAIL_FIELDS = {
    "ACTIVATE": "activate_activity_details",
    "LOAD": "load_activity_details",
    "REDEEM": "redeem_activity_details",
    "CLEAR_BALANCE": "clear_balance_activity_details",
    "DEACTIVATE": "deactivate_activity_details",
    "ADJUST_INCREMENT": "adjust_increment_activity_details",
    "ADJUST_DECREMENT": "adjust_decrement_activity_details",
    "REFUND": "refund_activity_details",
}


def rfc3339_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def error(
    status: int, code: str, detail: str, *, field: str | None = None, category: str = "INVALID_REQUEST_ERROR"
) -> Outcome:
    entry: dict[str, Any] = {"category": category, "code": code, "detail": detail}
    if field is not None:
        entry["field"] = field
    return Outcome(status, {"errors": [entry]})


@dataclass
class Location:
    id: str
    name: str
    currency: str


@dataclass
class GiftCard:
    id: str
    type: GiftCardType
    gan_source: GanSource
    state: GiftCardState
    balance: int  # minor units
    currency: str
    gan: str
    created_at: str = field(default_factory=rfc3339_now)

    def money(self) -> dict[str, Any]:
        return {"amount": self.balance, "currency": self.currency}

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "gan_source": self.gan_source,
            "state": self.state,
            "balance_money": self.money(),
            "gan": self.gan,
            "created_at": self.created_at,
        }


@dataclass
class Redemption:
    """A REDEEM activity, kept so REFUND activities can name it (``redeem_activity_id``)."""

    gift_card_id: str
    amount: int  # minor units
    currency: str
    refunded: int = 0  # minor units refunded against it so far

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded


@dataclass(frozen=True)
class Outcome:
    status: int
    payload: dict[str, Any]


def seed_id(gan: str) -> str:
    """Seed cards get stable IDs (the same after every reset), derived from their GAN."""
    return "gftc:" + hashlib.sha256(gan.encode()).hexdigest()[:32]


def seed_locations(currency: str) -> list[Location]:
    return [Location("LSIMMAIN00001", "Main Street", currency), Location("LSIMSTORE0002", "Harbour Store", currency)]


def seed_cards(currency: str) -> list[GiftCard]:
    def seed(gan: str, type_: GiftCardType, source: GanSource, state: GiftCardState, amount: int) -> GiftCard:
        return GiftCard(seed_id(gan), type_, source, state, amount, currency, gan, created_at=SEED_TIMESTAMP)

    cards = [
        seed("7783320000001111", "DIGITAL", "SQUARE", "ACTIVE", 5000),
        seed("7783320000002222", "PHYSICAL", "SQUARE", "ACTIVE", 2500),
        seed("7783320000003333", "DIGITAL", "SQUARE", "DEACTIVATED", 1500),
        seed("7783320000004444", "DIGITAL", "SQUARE", "BLOCKED", 1000),
    ]
    # Nine cards created but not activated yet, so several activation tests can each use a fresh one.
    cards += [seed(f"778332000000555{i}", "DIGITAL", "SQUARE", "PENDING", 0) for i in range(1, 10)]
    # A third-party card with a custom GAN.
    cards.append(seed("GIFTCARD2024XYZ", "PHYSICAL", "OTHER", "ACTIVE", 7500))
    return cards


# Plastic cards the seller ordered from Square and has not registered yet: `POST /v2/gift-cards`
# with type PHYSICAL and one of these GANs (no gan_source) creates the card.
UNREGISTERED_PLASTIC = tuple(f"77833200000099{i:02d}" for i in range(1, 6))


class SquareSimulator(SimCore):
    card_schema = SimCardRequest

    def __init__(self, currency: str = "USD") -> None:
        self.currency = currency
        super().__init__()

    def seed(self) -> None:
        self.locations = {location.id: location for location in seed_locations(self.currency)}
        self.cards: dict[str, GiftCard] = {card.id: card for card in seed_cards(self.currency)}
        self.plastic_stock = set(UNREGISTERED_PLASTIC)
        self.activity_count = 0
        self.redemptions: dict[str, Redemption] = {}  # REDEEM activity id -> what it took

    def card_views(self) -> list[dict[str, Any]]:
        return [card.view() for card in self.cards.values()]

    def put_card_from(self, body: SimCardRequest) -> dict[str, Any]:
        existing = self.by_gan(body.gan)
        if existing is not None:
            del self.cards[existing.id]
        card = GiftCard(
            seed_id(body.gan),
            body.type,
            body.gan_source,
            body.state,
            body.amount,
            body.currency or self.currency,
            body.gan,
        )
        self.cards[card.id] = card
        self.plastic_stock.discard(body.gan)
        return card.view()

    # --- lookups ---------------------------------------------------------------------------------

    def by_gan(self, gan: str) -> GiftCard | None:
        return next((card for card in self.cards.values() if card.gan == gan), None)

    def retrieve(self, card_id: str) -> Outcome:
        card = self.cards.get(card_id)
        if card is None:
            return _card_not_found()
        return Outcome(200, {"gift_card": card.view()})

    def retrieve_from_gan(self, gan: str) -> Outcome:
        card = self.by_gan(gan)
        if card is None:
            return _card_not_found()
        return Outcome(200, {"gift_card": card.view()})

    # --- CreateGiftCard ----------------------------------------------------------------------------

    def create(self, location_id: str, spec: GiftCardInput) -> Outcome:
        """Call :func:`validate_create` first: this only applies the rules that depend on state."""
        location = self.locations.get(location_id)
        if location is None:
            return _location_not_found("location_id")
        if spec.gan is not None and self.by_gan(spec.gan) is not None:
            return error(409, "CONFLICT", "A gift card with this GAN already exists.", field="gift_card.gan")
        if spec.gan is None:
            gan, source = self._unused_gan(), "SQUARE"
        elif spec.gan_source == "OTHER":
            gan, source = spec.gan, "OTHER"
        else:
            # Registering a plastic card ordered from Square: the GAN is printed on it.
            if spec.gan not in self.plastic_stock:
                return error(
                    400, "INVALID_VALUE", "The GAN is not an unregistered Square gift card.", field="gift_card.gan"
                )
            self.plastic_stock.discard(spec.gan)
            gan, source = spec.gan, "SQUARE"
        card = GiftCard("gftc:" + uuid.uuid4().hex, spec.type, source, "PENDING", 0, location.currency, gan)  # type: ignore[arg-type]
        self.cards[card.id] = card
        return Outcome(200, {"gift_card": card.view()})

    # --- CreateGiftCardActivity ----------------------------------------------------------------------

    def create_activity(self, activity: GiftCardActivityInput) -> Outcome:
        """Call :func:`validate_activity` first: this only applies the rules that depend on state."""
        detail_field = DETAIL_FIELDS[activity.type]
        details = getattr(activity, detail_field)
        location = self.locations.get(activity.location_id)
        if location is None:
            return _location_not_found("gift_card_activity.location_id")
        card = self.cards.get(activity.gift_card_id) if activity.gift_card_id is not None else None
        if activity.gift_card_gan is not None:
            by_gan = self.by_gan(activity.gift_card_gan)
            if activity.gift_card_id is not None and by_gan is not None and by_gan is not card:
                return error(
                    400,
                    "CONFLICTING_PARAMETERS",
                    "gift_card_id and gift_card_gan name different gift cards.",
                    field="gift_card_activity.gift_card_gan",
                )
            card = card or by_gan
        if card is None:
            return _card_not_found()

        money = getattr(details, "amount_money", None)
        if money is not None and money.currency != card.currency:
            return error(
                400,
                "CURRENCY_MISMATCH",
                f"The gift card is denominated in {card.currency}.",
                field=f"gift_card_activity.{detail_field}.amount_money.currency",
            )
        refused = self._apply(activity.type, card, details)
        if refused is not None:
            return refused

        self.activity_count += 1
        activity_id = "gcact_" + uuid.uuid4().hex
        echoed = msgspec.to_builtins(details)
        if activity.type == "REDEEM":
            # Redemptions through the Gift Card Activities API are always COMPLETED (read-only field).
            echoed["status"] = "COMPLETED"
            self.redemptions[activity_id] = Redemption(card.id, details.amount_money.amount, card.currency)
        return Outcome(
            200,
            {
                "gift_card_activity": {
                    "id": activity_id,
                    "type": activity.type,
                    "location_id": location.id,
                    "created_at": rfc3339_now(),
                    "gift_card_id": card.id,
                    "gift_card_gan": card.gan,
                    "gift_card_balance_money": card.money(),
                    detail_field: echoed,
                }
            },
        )

    def _apply(self, kind: str, card: GiftCard, details: Any) -> Outcome | None:
        """Changes the card, or returns why not."""
        if kind == "ACTIVATE":
            if card.state != "PENDING":
                return _wrong_state(card, "ACTIVATE", "PENDING")
            card.state = "ACTIVE"
            card.balance = details.amount_money.amount
            return None
        if kind == "DEACTIVATE":
            assert isinstance(details, DeactivateDetails)
            if card.state == "DEACTIVATED":
                return _wrong_state(card, "DEACTIVATE", "PENDING, ACTIVE or BLOCKED")
            # Permanent; the balance stays on record but can no longer change.
            card.state = "DEACTIVATED"
            return None
        if card.state != "ACTIVE":
            return _wrong_state(card, kind, "ACTIVE")
        if kind in ("LOAD", "ADJUST_INCREMENT"):
            card.balance += details.amount_money.amount
        elif kind in ("REDEEM", "ADJUST_DECREMENT"):
            assert isinstance(details, (RedeemDetails, AdjustDecrementDetails))
            if details.amount_money.amount > card.balance:
                return _insufficient_funds()
            card.balance -= details.amount_money.amount
        elif kind == "REFUND":
            assert isinstance(details, RefundDetails) and details.amount_money is not None
            return self._refund(card, details)
        else:
            assert isinstance(details, ClearBalanceDetails)
            card.balance = 0
        return None

    def _refund(self, card: GiftCard, details: RefundDetails) -> Outcome | None:
        """A REFUND from a custom payment processing system names the REDEEM it gives back
        (``redeem_activity_id``, on the same gift card) and may not give back more than that
        redemption took, less earlier refunds (``REFUND_AMOUNT_INVALID``)."""
        field = "gift_card_activity.refund_activity_details.redeem_activity_id"
        assert details.redeem_activity_id is not None and details.amount_money is not None
        redemption = self.redemptions.get(details.redeem_activity_id)
        if redemption is None:
            return error(404, "NOT_FOUND", "The REDEEM activity was not found.", field=field)
        if redemption.gift_card_id != card.id:
            return error(400, "INVALID_VALUE", "The REDEEM activity is linked to another gift card.", field=field)
        amount = details.amount_money.amount
        if amount > redemption.refundable:
            return error(
                400,
                "REFUND_AMOUNT_INVALID",
                "The requested refund amount exceeds the amount available to refund.",
                field="gift_card_activity.refund_activity_details.amount_money.amount",
                category="REFUND_ERROR",
            )
        redemption.refunded += amount
        card.balance += amount
        return None

    def _unused_gan(self) -> str:
        while True:
            gan = ISSUED_GAN_PREFIX + f"{secrets.randbelow(10**9):09d}"
            if self.by_gan(gan) is None and gan not in self.plastic_stock:
                return gan


def validate_create(spec: GiftCardInput) -> Outcome | None:
    """The CreateGiftCard rules that do not depend on state (a rejection here is never stored for replay)."""
    if spec.gan_source == "OTHER":
        if spec.gan is None:
            return error(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field="gift_card.gan")
        if not CUSTOM_GAN.match(spec.gan):
            return error(
                400,
                "VALUE_REGEX_MISMATCH",
                "A custom GAN must be 8 to 20 alphanumeric characters.",
                field="gift_card.gan",
            )
    elif spec.gan is not None and spec.type != "PHYSICAL":
        return error(
            400,
            "INVALID_VALUE",
            "A GAN can be given for a DIGITAL gift card only with gan_source OTHER.",
            field="gift_card.gan",
        )
    elif spec.gan is None and spec.type == "PHYSICAL":
        # A plastic card's GAN is printed on it: it must be given.
        return error(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field="gift_card.gan")
    return None


def validate_activity(activity: GiftCardActivityInput) -> Outcome | None:
    """The CreateGiftCardActivity rules that do not depend on state (never stored for replay)."""
    if activity.type in SQUARE_MANAGED:
        return error(
            400,
            "INVALID_VALUE",
            f"{activity.type} activities are managed by Square and cannot be created.",
            field="gift_card_activity.type",
        )
    if activity.type in NOT_SIMULATED:
        return error(
            400,
            "BAD_REQUEST",
            f"{activity.type} activities are not supported by this simulator.",
            field="gift_card_activity.type",
        )
    detail_field = DETAIL_FIELDS[activity.type]
    details = getattr(activity, detail_field)
    if details is None:
        return error(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field=f"gift_card_activity.{detail_field}")
    for other in DETAIL_FIELDS.values():
        if other != detail_field and getattr(activity, other) is not None:
            return error(
                400,
                "CONFLICTING_PARAMETERS",
                f"Only {detail_field} may be set when type is {activity.type}.",
                field=f"gift_card_activity.{other}",
            )
    if isinstance(details, FundingDetails):
        problem = _check_funding(details, detail_field)
        if problem is not None:
            return problem
    if isinstance(details, RefundDetails):
        # Nullable in the schema, required "for applications that use a custom payment processing system".
        for name in ("redeem_activity_id", "amount_money"):
            if getattr(details, name) is None:
                return error(
                    400,
                    "MISSING_REQUIRED_PARAMETER",
                    "Field must be set",
                    field=f"gift_card_activity.{detail_field}.{name}",
                )
        assert details.redeem_activity_id is not None
        if not details.redeem_activity_id:
            return error(
                400,
                "VALUE_TOO_SHORT",
                "Must be at least 1 characters long.",
                field=f"gift_card_activity.{detail_field}.redeem_activity_id",
            )
    if isinstance(details, (RedeemDetails, RefundDetails, AdjustIncrementDetails, AdjustDecrementDetails)):
        # "This value is a positive integer" (api.json, each of these details objects).
        assert details.amount_money is not None
        if details.amount_money.amount <= 0:
            return error(
                400,
                "VALUE_TOO_LOW",
                "The amount must be greater than 0.",
                field=f"gift_card_activity.{detail_field}.amount_money.amount",
            )
    if activity.gift_card_id is None and activity.gift_card_gan is None:
        return error(
            400,
            "MISSING_REQUIRED_PARAMETER",
            "Either gift_card_id or gift_card_gan must be set.",
            field="gift_card_activity.gift_card_id",
        )
    return None


def _insufficient_funds() -> Outcome:
    return error(
        400, "INSUFFICIENT_FUNDS", "The gift card balance is lower than the amount.", category="PAYMENT_METHOD_ERROR"
    )


def _card_not_found() -> Outcome:
    return error(404, "NOT_FOUND", "Gift card not found.")


def _location_not_found(field: str) -> Outcome:
    return error(404, "NOT_FOUND", "Location not found.", field=field)


def _wrong_state(card: GiftCard, kind: str, needed: str) -> Outcome:
    return error(
        400, "BAD_REQUEST", f"The {kind} activity needs a gift card in state {needed}; this one is {card.state}."
    )


def _check_funding(details: FundingDetails, detail_field: str) -> Outcome | None:
    prefix = f"gift_card_activity.{detail_field}"
    if details.order_id is not None or details.line_item_uid is not None:
        # Orders API flows (order_id + line_item_uid) need Square orders, which are not simulated.
        return error(
            400,
            "BAD_REQUEST",
            "This simulator has no Orders API: send amount_money and buyer_payment_instrument_ids.",
            field=f"{prefix}.order_id",
        )
    if details.amount_money is None:
        return error(400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field=f"{prefix}.amount_money")
    if details.amount_money.amount <= 0:
        return error(400, "VALUE_TOO_LOW", "The amount must be greater than 0.", field=f"{prefix}.amount_money.amount")
    if not details.buyer_payment_instrument_ids:
        return error(
            400, "MISSING_REQUIRED_PARAMETER", "Field must be set", field=f"{prefix}.buyer_payment_instrument_ids"
        )
    return None
