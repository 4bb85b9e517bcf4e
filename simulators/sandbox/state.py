"""In-memory provider state: cards, holds and their business rules (call log, faults and
idempotency records come from :class:`simulators.simkit.SimCore`).

Money model: a card has *funds*; an active hold reserves part of them. What a card shows as its
balance (lookup, ``/_sim/cards``) is what can still be spent: funds minus the remaining amount of
its active holds. Capturing moves money out of the funds (and out of the hold), refunding puts it
back into the funds, releasing frees what the hold still reserved. Invariant: a card's funds are
never below what its active holds reserve.

Everything here is synchronous on purpose: callers hold ``Simulator.lock`` around a whole
read-check-write sequence, and without awaits inside, no other request can interleave with it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from simulators.simkit import SimCore, utc_now

from .schemas import CardState, HoldState, SimCardRequest

ISSUED_CARD_PREFIX = "6006497"

# Seed cards get a fixed creation time so that tests can compare whole card views.
SEED_TIMESTAMP = "2024-01-01T00:00:00Z"


def pins_match(given: str, expected: str) -> bool:
    # Constant time, so response timing does not help anyone guess a PIN digit by digit.
    return hmac.compare_digest(given.encode(), expected.encode())


def new_id(prefix: str) -> str:
    """``hold_`` / ``red_`` / ``crd_`` + 24 hex digits."""
    return prefix + secrets.token_hex(12)


@dataclass
class Card:
    number: str
    pin: str | None
    state: CardState
    funds_minor: int  # the money on the card, active holds included
    currency: str
    customer_ref: str | None = None
    created_at: str = field(default_factory=utc_now)
    deactivated_at: str | None = None
    held_minor: int = 0  # what active holds still reserve (kept in step by the Simulator)

    @property
    def balance_minor(self) -> int:
        """What can be spent: the funds minus what active holds reserve."""
        return self.funds_minor - self.held_minor

    def view(self, *, with_pin: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "number": self.number,
            "state": self.state,
            "balance": {"amount_minor": self.balance_minor, "currency": self.currency},
            "customer_ref": self.customer_ref,
            "created_at": self.created_at,
            "deactivated_at": self.deactivated_at,
        }
        if with_pin:
            # Test controls only: the funds and holds behind the balance, and the PIN.
            data["pin"] = self.pin
            data["funds_minor"] = self.funds_minor
            data["held_minor"] = self.held_minor
        return data


@dataclass
class Hold:
    """Funds reserved on a card; captured (redeemed) in one or more parts, or released."""

    id: str
    card_number: str
    amount_minor: int
    currency: str
    reference: str | None
    state: HoldState = "active"
    captured_minor: int = 0
    refunded_minor: int = 0
    remaining_minor: int = 0
    created_at: str = field(default_factory=utc_now)
    redemptions: list[dict[str, Any]] = field(default_factory=list)
    credits: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        # Never the card number or PIN: the last four digits identify the card to a person.
        return {
            "id": self.id,
            "state": self.state,
            "amount_minor": self.amount_minor,
            "captured_minor": self.captured_minor,
            "refunded_minor": self.refunded_minor,
            "remaining_minor": self.remaining_minor,
            "currency": self.currency,
            "card_last4": self.card_number[-4:],
            "reference": self.reference,
            "created_at": self.created_at,
        }

    def sim_view(self) -> dict[str, Any]:
        """``GET /_sim/holds``: the hold view plus the card and every redemption and credit."""
        return {
            **self.view(),
            "card_number": self.card_number,
            "redemptions": list(self.redemptions),
            "credits": list(self.credits),
        }


def seed_cards() -> list[Card]:
    def seed(number: str, pin: str | None, state: CardState, minor: int, currency: str) -> Card:
        return Card(
            number=number,
            pin=pin,
            state=state,
            funds_minor=minor,
            currency=currency,
            created_at=SEED_TIMESTAMP,
            deactivated_at=SEED_TIMESTAMP if state == "deactivated" else None,
        )

    cards = [
        seed("6006491111111111", "480163", "active", 5000, "USD"),
        seed("6006492222222222", "731905", "active", 10000, "JPY"),
        seed("6006493333333333", "259447", "active", 12345, "KWD"),
        seed("6006494444444444", "602718", "deactivated", 0, "USD"),
    ]
    # Nine registered cards, so several activation tests can each use a fresh one without a reset.
    cards += [seed(f"600649555555555{i}", f"71055{i}", "registered", 0, "USD") for i in range(1, 10)]
    cards.append(seed("6006496666666666", None, "active", 2000, "EUR"))
    return cards


@dataclass(frozen=True)
class Outcome:
    """A response decided by business logic; the HTTP layer encodes it and may store it for replay."""

    status: int
    payload: dict[str, Any]


def _ok(card: Card, *, status: int = 200, with_pin: bool = False) -> Outcome:
    return Outcome(status, {"result": "ok", "card": card.view(with_pin=with_pin)})


def _refused(code: str, message: str) -> Outcome:
    # Business refusals are HTTP 200, like Adyen's resultCode: the request itself was fine.
    return Outcome(200, {"result": "refused", "refusal": {"code": code, "message": message}})


CARD_NOT_FOUND = Outcome(404, {"error": {"code": "card_not_found", "message": "no card with this number"}})
HOLD_NOT_FOUND = Outcome(404, {"error": {"code": "hold_not_found", "message": "no hold with this id"}})
INVALID_PIN = _refused("invalid_pin", "the PIN does not match the card")
CARD_DEACTIVATED = _refused("card_deactivated", "the card has been deactivated")
CARD_NOT_ACTIVE = _refused("card_not_active", "the card has not been activated yet")
HOLD_NOT_ACTIVE = _refused("hold_not_active", "the hold has already been captured in full or released")


class Simulator(SimCore):
    card_schema = SimCardRequest

    def seed(self) -> None:
        self.cards: dict[str, Card] = {card.number: card for card in seed_cards()}
        self.holds: dict[str, Hold] = {}

    def hold_views(self) -> list[dict[str, Any]]:
        return [hold.sim_view() for hold in self.holds.values()]

    def card_views(self) -> list[dict[str, Any]]:
        return [card.view(with_pin=True) for card in self.cards.values()]

    def put_card_from(self, body: SimCardRequest) -> dict[str, Any]:
        card = Card(
            number=body.number,
            pin=body.pin,
            state=body.state,
            funds_minor=body.amount_minor,
            currency=body.currency,
            customer_ref=body.customer_ref,
        )
        if card.state == "deactivated":
            card.deactivated_at = card.created_at
        self.put_card(card)
        return card.view(with_pin=True)

    def put_card(self, card: Card) -> None:
        # A replaced card starts afresh: the old card's active holds are released, so the new
        # card's balance is exactly the amount given.
        self._release_holds_of(card.number)
        self.cards[card.number] = card

    def lookup(self, number: str, pin: str | None) -> Outcome:
        card = self.cards.get(number)
        if card is None:
            return CARD_NOT_FOUND
        # The PIN is checked first so that a caller without it learns nothing about the card's state.
        if card.pin is not None and (pin is None or not pins_match(pin, card.pin)):
            return INVALID_PIN
        if card.state == "deactivated":
            return CARD_DEACTIVATED
        if card.state == "registered":
            return CARD_NOT_ACTIVE
        return _ok(card)

    def issue(self, amount_minor: int, currency: str, customer_ref: str) -> Outcome:
        card = Card(
            number=self._unused_number(),
            pin=f"{secrets.randbelow(10**6):06d}",
            state="active",
            funds_minor=amount_minor,
            currency=currency,
            customer_ref=customer_ref,
        )
        self.cards[card.number] = card
        return _ok(card, status=201, with_pin=True)

    def activate(self, number: str, amount_minor: int, currency: str, customer_ref: str) -> Outcome:
        card = self.cards.get(number)
        if card is None:
            return CARD_NOT_FOUND
        if card.state == "deactivated":
            return CARD_DEACTIVATED
        if card.state == "active":
            return _refused("card_already_active", "the card is already active")
        if currency != card.currency:
            return _refused("currency_mismatch", f"the card is denominated in {card.currency}")
        card.state = "active"
        card.funds_minor = amount_minor
        card.customer_ref = customer_ref
        return _ok(card, with_pin=True)

    def deactivate(self, number: str, pin: str | None) -> Outcome:
        card = self.cards.get(number)
        if card is None:
            return CARD_NOT_FOUND
        # A missing PIN is accepted: NewStore's deactivation carries the PIN only optionally.
        if card.pin is not None and pin is not None and not pins_match(pin, card.pin):
            return INVALID_PIN
        if card.state == "deactivated":
            return CARD_DEACTIVATED
        self._release_holds_of(card.number)
        card.state = "deactivated"
        card.funds_minor = 0
        card.deactivated_at = utc_now()
        return _ok(card)

    # --- holds ---------------------------------------------------------------------------------

    def hold(self, number: str, pin: str | None, amount_minor: int, currency: str, reference: str | None) -> Outcome:
        card = self.cards.get(number)
        if card is None:
            return CARD_NOT_FOUND
        # Same PIN rule as lookup, checked before anything that would reveal the card's state.
        if card.pin is not None and (pin is None or not pins_match(pin, card.pin)):
            return INVALID_PIN
        if card.state == "deactivated":
            return CARD_DEACTIVATED
        if card.state == "registered":
            return CARD_NOT_ACTIVE
        if currency != card.currency:
            return _refused("currency_mismatch", f"the card is denominated in {card.currency}")
        if amount_minor > card.balance_minor:
            return _refused("insufficient_funds", "the card's available balance is lower than the amount")
        hold = Hold(
            id=new_id("hold_"),
            card_number=card.number,
            amount_minor=amount_minor,
            currency=currency,
            reference=reference,
            remaining_minor=amount_minor,
        )
        self.holds[hold.id] = hold
        card.held_minor += amount_minor
        return Outcome(201, {"result": "ok", "hold": hold.view()})

    def capture(self, hold_id: str, amount_minor: int) -> Outcome:
        hold = self.holds.get(hold_id)
        if hold is None:
            return HOLD_NOT_FOUND
        if hold.state != "active":
            return HOLD_NOT_ACTIVE
        if amount_minor > hold.remaining_minor:
            return _refused("exceeds_hold", f"the hold has {hold.remaining_minor} left to capture")
        # An active hold always has its (active) card: deactivating or replacing a card releases its holds.
        card = self.cards[hold.card_number]
        card.funds_minor -= amount_minor
        card.held_minor -= amount_minor
        hold.remaining_minor -= amount_minor
        hold.captured_minor += amount_minor
        if hold.remaining_minor == 0:
            hold.state = "captured"
        redemption = {"id": new_id("red_"), "amount_minor": amount_minor, "currency": hold.currency}
        hold.redemptions.append(redemption)
        return Outcome(200, {"result": "ok", "hold": hold.view(), "redemption": redemption})

    def release(self, hold_id: str) -> Outcome:
        hold = self.holds.get(hold_id)
        if hold is None:
            return HOLD_NOT_FOUND
        if hold.state != "active":
            return HOLD_NOT_ACTIVE
        released = self._release(hold)
        return Outcome(200, {"result": "ok", "hold": hold.view(), "released_minor": released})

    def refund(self, hold_id: str, amount_minor: int) -> Outcome:
        hold = self.holds.get(hold_id)
        if hold is None:
            return HOLD_NOT_FOUND
        card = self.cards.get(hold.card_number)
        if card is None or card.state == "deactivated":
            return CARD_DEACTIVATED
        if card.currency != hold.currency:  # only after the card was replaced through /_sim/cards
            return _refused("currency_mismatch", f"the card is denominated in {card.currency}")
        refundable = hold.captured_minor - hold.refunded_minor
        if amount_minor > refundable:
            return _refused("exceeds_captured", f"the hold has {refundable} captured and not yet refunded")
        card.funds_minor += amount_minor
        hold.refunded_minor += amount_minor
        credit = {"id": new_id("crd_"), "amount_minor": amount_minor, "currency": hold.currency}
        hold.credits.append(credit)
        return Outcome(200, {"result": "ok", "hold": hold.view(), "credit": credit})

    def _release(self, hold: Hold) -> int:
        released = hold.remaining_minor
        card = self.cards.get(hold.card_number)
        if card is not None:
            card.held_minor -= released
        hold.remaining_minor = 0
        hold.state = "released"
        return released

    def _release_holds_of(self, number: str) -> None:
        for hold in self.holds.values():
            if hold.card_number == number and hold.state == "active":
                self._release(hold)

    def _unused_number(self) -> str:
        while True:
            number = ISSUED_CARD_PREFIX + f"{secrets.randbelow(10**9):09d}"
            if number not in self.cards:
                return number
