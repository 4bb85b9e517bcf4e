"""In-memory state of the simulated Radial Payments service: stores, tender types, gift cards.

Radial answers business outcomes inside HTTP 200 replies: stored value operations carry a
``ResponseCode`` of ``Success``, ``Fail`` or ``Timeout`` (``SuccessFailResponseCodeType``), the tender
type lookup one of its own codes. Only malformed or unauthorised requests get a ``Fault`` with a
4xx status (see app.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from simulators.simkit import SimCore

from .schemas import SimCardRequest

CardState = Literal["active", "inactive", "deactivated"]
TenderClass = Literal["PrivateLabelCreditCard", "CreditCard", "StoredValue"]
MAX_FUND = Decimal("2000.00")


@dataclass(frozen=True)
class StoredValueTender:
    code: str
    label: str
    prefix: str
    length: int
    pin_length: int | None  # None: the tender takes no PIN
    cashout_deactivates: bool
    currencies: frozenset[str]

    def owns(self, pan: str) -> bool:
        return pan.startswith(self.prefix) and len(pan) == self.length


# The simulator's tender type table (real codes are provider- and client-specific; see README).
STORED_VALUE_TENDERS: dict[str, StoredValueTender] = {
    tender.code: tender
    for tender in (
        StoredValueTender("GS", "Radial gift card", "603571", 16, 4, True, frozenset({"USD", "CAD"})),
        StoredValueTender("SP", "SVS gift card", "600649", 19, 8, True, frozenset({"USD"})),
        StoredValueTender("BH", "Blackhawk gift card", "604646", 16, None, False, frozenset({"USD"})),
    )
}
# Credit card tender types by PAN prefix (for the lookup only).
CREDIT_CARD_TENDERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AM", ("34", "37")),
    ("DC", ("6011",)),
    ("MC", ("51", "52", "53", "54", "55")),
    ("VC", ("4",)),
)
CREDIT_CARD_CURRENCIES = frozenset({"USD", "CAD"})


@dataclass(frozen=True)
class Store:
    id: str
    currency: str
    tender_types: frozenset[str]


STORES: dict[str, Store] = {
    store.id: store
    for store in (
        Store("TMSUS", "USD", frozenset({"GS", "SP", "BH", "VC", "MC", "AM", "DC"})),
        Store("TMSCA", "CAD", frozenset({"GS", "VC", "MC"})),
    )
}


def luhn_ok(pan: str) -> bool:
    if not pan.isascii() or not pan.isdigit() or len(pan) < 2:
        return False
    total = 0
    for i, digit in enumerate(int(ch) for ch in reversed(pan)):
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def with_check_digit(partial: str) -> str:
    return next(partial + str(d) for d in range(10) if luhn_ok(partial + str(d)))


def money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


@dataclass
class Card:
    pan: str
    tender: str
    pin: str | None
    state: CardState
    balance: Decimal
    currency: str
    timeout: bool = False  # every operation answers ResponseCode Timeout (the processor "timed out")

    def view(self) -> dict[str, Any]:
        return {
            "pan": self.pan,
            "tender_type": self.tender,
            "pin": self.pin,
            "state": self.state,
            "balance": money(self.balance),
            "currency": self.currency,
            "timeout": self.timeout,
        }


@dataclass(frozen=True)
class Result:
    """A stored value outcome: ``Success`` or ``Fail`` and the balance to report."""

    code: Literal["Success", "Fail", "Timeout"]
    balance: Decimal


def _seed_cards() -> list[Card]:
    cards: list[Card] = []

    def add(
        tender: str,
        serial: int,
        pin: str | None,
        state: CardState,
        balance: str,
        currency: str = "USD",
        timeout: bool = False,
    ) -> None:
        spec = STORED_VALUE_TENDERS[tender]
        body = spec.prefix + str(serial).zfill(spec.length - len(spec.prefix) - 1)
        cards.append(Card(with_check_digit(body), tender, pin, state, Decimal(balance), currency, timeout))

    add("GS", 1, "1234", "active", "50.00")
    add("GS", 2, "2345", "active", "0.00")
    for serial in range(3, 8):
        add("GS", serial, f"{serial}{serial}{serial}{serial}", "inactive", "0.00")
    add("GS", 8, "8888", "deactivated", "20.00")
    add("GS", 9, "4321", "active", "40.00", "CAD")
    add("GS", 10, "1010", "active", "30.00", timeout=True)
    add("SP", 1, "12345678", "active", "100.00")
    add("SP", 2, "23456789", "active", "0.00")
    for serial in range(3, 6):
        add("SP", serial, f"{serial}" * 8, "inactive", "0.00")
    add("BH", 1, None, "active", "25.00")
    add("BH", 2, None, "active", "0.00")
    for serial in range(3, 6):
        add("BH", serial, None, "inactive", "0.00")
    return cards


class RadialSimulator(SimCore):
    card_schema = SimCardRequest

    def seed(self) -> None:
        self.cards: dict[str, Card] = {card.pan: card for card in _seed_cards()}

    def card_views(self) -> list[dict[str, Any]]:
        return [card.view() for card in self.cards.values()]

    def put_card_from(self, body: SimCardRequest) -> dict[str, Any]:
        card = Card(
            body.pan, body.tender_type, body.pin, body.state, Decimal(body.balance), body.currency, body.timeout
        )
        self.cards[body.pan] = card
        return card.view()

    # --- lookups ---------------------------------------------------------------------------------

    def _card(self, tender: str, pan: str, pin: str | None, currency: str) -> Card | None:
        """The card if it exists under this tender type, holds ``currency`` and the PIN fits."""
        card = self.cards.get(pan)
        if card is None or card.tender != tender or card.currency != currency:
            return None
        if STORED_VALUE_TENDERS[tender].pin_length is not None and (pin is None or pin != card.pin):
            return None
        return card

    def tender_type_lookup(self, store: Store, pan: str, tender_class: TenderClass, currency: str) -> tuple[str, str]:
        """``(TenderType, ResponseCode)``; TenderType is empty when none was found."""
        if not luhn_ok(pan):
            return "", "PAN_FAILS_LUHN_CHECK"
        found: str | None = None
        currencies: frozenset[str] = frozenset()
        if tender_class == "StoredValue":
            tender = next((t for t in STORED_VALUE_TENDERS.values() if t.owns(pan)), None)
            if tender is not None:
                found, currencies = tender.code, tender.currencies
        elif tender_class == "CreditCard":
            for code, prefixes in CREDIT_CARD_TENDERS:
                if pan.startswith(prefixes) and 13 <= len(pan) <= 19:
                    found, currencies = code, CREDIT_CARD_CURRENCIES
                    break
        if found is None or currency not in currencies:
            return "", "NO_TENDER_TYPE_FOUND"
        if found not in store.tender_types:
            return "", "PAN_NOT_CONFIGURED_TO_STORE"
        return found, "TENDER_TYPE_FOUND"

    # --- stored value operations -------------------------------------------------------------------

    def balance(self, tender: str, pan: str, pin: str | None, currency: str) -> Result:
        card = self._card(tender, pan, pin, currency)
        if card is not None and card.timeout:
            return Result("Timeout", Decimal(0))
        if card is None or card.state != "active":
            return Result("Fail", Decimal(0))
        return Result("Success", card.balance)

    def fund_and_activate(self, tender: str, pan: str, pin: str | None, amount: Decimal, currency: str) -> Result:
        card = self._card(tender, pan, pin, currency)
        if card is not None and card.timeout:
            return Result("Timeout", Decimal(0))
        if card is None or card.state != "inactive" or not Decimal(0) < amount <= MAX_FUND:
            return Result("Fail", card.balance if card is not None and card.state == "active" else Decimal(0))
        card.state = "active"
        card.balance = amount
        return Result("Success", card.balance)

    def cash_out(self, tender: str, pan: str, pin: str | None, amount: Decimal, currency: str) -> Result:
        card = self._card(tender, pan, pin, currency)
        if card is not None and card.timeout:
            return Result("Timeout", Decimal(0))
        if card is None or card.state != "active":
            return Result("Fail", Decimal(0))
        if amount > card.balance:
            return Result("Fail", card.balance)
        card.balance -= amount
        if STORED_VALUE_TENDERS[tender].cashout_deactivates:
            card.state = "deactivated"
        return Result("Success", card.balance)
