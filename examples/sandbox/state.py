"""In-memory provider state: cards and their business rules (call log, faults and idempotency
records come from :class:`examples.simkit.SimCore`).

Everything here is synchronous on purpose: callers hold ``Simulator.lock`` around a whole
read-check-write sequence, and without awaits inside, no other request can interleave with it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from examples.simkit import SimCore, utc_now

from .schemas import CardState, SimCardRequest

ISSUED_CARD_PREFIX = "6006497"

# Seed cards get a fixed creation time so that tests can compare whole card views.
SEED_TIMESTAMP = "2024-01-01T00:00:00Z"


def pins_match(given: str, expected: str) -> bool:
    # Constant time, so response timing does not help anyone guess a PIN digit by digit.
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Card:
    number: str
    pin: str | None
    state: CardState
    balance_minor: int
    currency: str
    customer_ref: str | None = None
    created_at: str = field(default_factory=utc_now)
    deactivated_at: str | None = None

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
            data["pin"] = self.pin
        return data


def seed_cards() -> list[Card]:
    def seed(number: str, pin: str | None, state: CardState, minor: int, currency: str) -> Card:
        return Card(
            number=number,
            pin=pin,
            state=state,
            balance_minor=minor,
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
INVALID_PIN = _refused("invalid_pin", "the PIN does not match the card")
CARD_DEACTIVATED = _refused("card_deactivated", "the card has been deactivated")


class Simulator(SimCore):
    card_schema = SimCardRequest

    def seed(self) -> None:
        self.cards: dict[str, Card] = {card.number: card for card in seed_cards()}

    def card_views(self) -> list[dict[str, Any]]:
        return [card.view(with_pin=True) for card in self.cards.values()]

    def put_card_from(self, body: SimCardRequest) -> dict[str, Any]:
        card = Card(
            number=body.number,
            pin=body.pin,
            state=body.state,
            balance_minor=body.amount_minor,
            currency=body.currency,
            customer_ref=body.customer_ref,
        )
        if card.state == "deactivated":
            card.deactivated_at = card.created_at
        self.put_card(card)
        return card.view(with_pin=True)

    def put_card(self, card: Card) -> None:
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
            return _refused("card_not_active", "the card has not been activated yet")
        return _ok(card)

    def issue(self, amount_minor: int, currency: str, customer_ref: str) -> Outcome:
        card = Card(
            number=self._unused_number(),
            pin=f"{secrets.randbelow(10**6):06d}",
            state="active",
            balance_minor=amount_minor,
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
        card.balance_minor = amount_minor
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
        card.state = "deactivated"
        card.balance_minor = 0
        card.deactivated_at = utc_now()
        return _ok(card)

    def _unused_number(self) -> str:
        while True:
            number = ISSUED_CARD_PREFIX + f"{secrets.randbelow(10**9):09d}"
            if number not in self.cards:
                return number
