"""In-memory state of the simulated Adyen Stored Value API: cards, transactions, business rules.

Business refusals are HTTP 200 with ``resultCode: Refused`` and a ``refusalReason`` taken from
Adyen's documented refusal reasons; see README.md for which rule gives which reason.
"""

from __future__ import annotations

import hmac
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Literal

from simulators.simkit import SimCore, utc_now

from .schemas import Amount, Brand, CardStatus, SimCardRequest

SEED_TIMESTAMP = "2024-01-01T00:00:00Z"

# Refusal reasons, from Adyen's documented list (docs.adyen.com/development-resources/refusal-reasons).
INVALID_CARD_NUMBER = "Invalid Card Number"
INVALID_PIN = "Invalid Pin"
BLOCKED_CARD = "Blocked Card"
NOT_PERMITTED = "Transaction Not Permitted"
INVALID_AMOUNT = "Invalid Amount"
NOT_ENOUGH_BALANCE = "Not enough balance"
# resultCode `Error` ("an error when the operation was processed", reason in refusalReason).
ACQUIRER_ERROR = "Acquirer Error"

# Issued cards: number prefix, total length, security code length.
ISSUE_FORMAT: dict[str, tuple[str, int, int]] = {
    "givex": ("603628", 19, 5),
    "svs": ("600649", 19, 4),
    "valuelink": ("7777", 16, 8),
}

_PSP_ALPHABET = string.ascii_uppercase + string.digits


def psp_reference() -> str:
    """Adyen's 16-character reference (here: random upper-case letters and digits)."""
    return "".join(secrets.choice(_PSP_ALPHABET) for _ in range(16))


def auth_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def codes_match(given: str, expected: str) -> bool:
    # Constant time, so response timing does not help anyone guess a security code digit by digit.
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass
class Card:
    brand: Brand
    number: str
    security_code: str | None
    status: CardStatus
    balance: int  # minor units
    currency: str
    created_at: str = field(default_factory=utc_now)
    processor_error: bool = False  # every operation answers resultCode Error (the processor fails)

    def money(self) -> dict[str, Any]:
        return {"currency": self.currency, "value": self.balance}

    def view(self) -> dict[str, Any]:
        return {
            "type": self.brand,
            "number": self.number,
            "securityCode": self.security_code,
            "status": self.status,
            "balance": self.money(),
            "createdAt": self.created_at,
        }


TxKind = Literal["checkBalance", "issue", "load", "activate", "deactivate", "void"]


@dataclass
class Transaction:
    """A processed request, kept so ``/voidTransaction`` can undo it."""

    psp: str
    kind: TxKind
    card: Card | None
    succeeded: bool
    amount: int = 0  # load: the amount added
    previous_status: CardStatus | None = None  # activate: the status before
    previous_balance: int = 0  # activate: the balance before
    voided: bool = False


@dataclass(frozen=True)
class Outcome:
    """A response decided by business logic; the HTTP layer encodes it and may store it for replay."""

    status: int
    payload: dict[str, Any]


def seed_cards() -> list[Card]:
    def seed(brand: Brand, number: str, code: str | None, status: CardStatus, value: int, currency: str,
             processor_error: bool = False) -> Card:
        return Card(brand, number, code, status, value, currency, created_at=SEED_TIMESTAMP,
                    processor_error=processor_error)

    cards = [
        seed("givex", "6036280000000001001", "41093", "active", 5000, "USD"),
        seed("givex", "6036280000000002002", "58214", "active", 10000, "JPY"),
        seed("svs", "6006490000000003003", "7720", "active", 12345, "KWD"),
        seed("givex", "6036280000000004004", "30571", "inactive", 0, "USD"),
    ]
    # Nine plastic cards not activated yet, so several activation tests can each use a fresh one.
    cards += [seed("givex", f"603628000000000550{i}", f"2255{i}", "pending", 0, "USD") for i in range(1, 10)]
    # A preloaded plastic card: activate it without an amount, or with exactly 25.00 USD.
    cards.append(seed("svs", "6006490000000006006", "1846", "pending", 2500, "USD"))
    # A card without a security code.
    cards.append(seed("valuelink", "7777007007007007", None, "active", 2000, "EUR"))
    # A card whose processor fails: every operation answers resultCode Error.
    cards.append(seed("givex", "6036280000000009009", "90909", "active", 1000, "USD", processor_error=True))
    return cards


class AdyenSimulator(SimCore):
    card_schema = SimCardRequest

    def __init__(self, default_currency: str = "USD") -> None:
        self.default_currency = default_currency
        super().__init__()

    def seed(self) -> None:
        self.cards: dict[str, Card] = {card.number: card for card in seed_cards()}
        self.transactions: dict[str, Transaction] = {}

    def card_views(self) -> list[dict[str, Any]]:
        return [card.view() for card in self.cards.values()]

    def put_card_from(self, body: SimCardRequest) -> dict[str, Any]:
        card = Card(body.type, body.number, body.securityCode, body.status, body.value, body.currency)
        self.cards[card.number] = card
        return card.view()

    # --- helpers -----------------------------------------------------------------------------

    def _record(self, kind: TxKind, card: Card | None, succeeded: bool, **details: Any) -> str:
        psp = psp_reference()
        while psp in self.transactions:
            psp = psp_reference()
        self.transactions[psp] = Transaction(psp, kind, card, succeeded, **details)
        return psp

    def _refused(self, kind: TxKind, card: Card | None, reason: str) -> Outcome:
        psp = self._record(kind, card, False)
        return Outcome(200, {"pspReference": psp, "refusalReason": reason, "resultCode": "Refused"})

    def _errored(self, kind: TxKind, card: Card) -> Outcome:
        psp = self._record(kind, card, False)
        return Outcome(200, {"pspReference": psp, "refusalReason": ACQUIRER_ERROR, "resultCode": "Error"})

    def _find(self, brand: str, number: str) -> Card | None:
        card = self.cards.get(number)
        # A number issued under another brand is unknown to this brand's processor.
        return card if card is not None and card.brand == brand else None

    @staticmethod
    def _pin_refused(card: Card, given: str | None, *, required: bool) -> bool:
        if card.security_code is None or (given is None and not required):
            return False
        return given is None or not codes_match(given, card.security_code)

    # --- operations ------------------------------------------------------------------------------

    def check_balance(self, brand: str, number: str, pin: str | None, amount: Amount | None) -> Outcome:
        card = self._find(brand, number)
        if card is None:
            return self._refused("checkBalance", None, INVALID_CARD_NUMBER)
        if card.processor_error:
            return self._errored("checkBalance", card)
        # The security code is checked first so that a caller without it learns nothing about the card.
        if self._pin_refused(card, pin, required=True):
            return self._refused("checkBalance", card, INVALID_PIN)
        if card.status == "inactive":
            return self._refused("checkBalance", card, BLOCKED_CARD)
        if card.status == "pending":
            return self._refused("checkBalance", card, NOT_PERMITTED)
        psp = self._record("checkBalance", card, True)
        result = "Success"
        if amount is not None and (amount.currency != card.currency or amount.value > card.balance):
            result = "NotEnoughBalance"
        return Outcome(200, {"currentBalance": card.money(), "pspReference": psp, "resultCode": result})

    def issue(self, brand: Brand, amount: Amount | None) -> Outcome:
        prefix, length, code_length = ISSUE_FORMAT[brand]
        number = self._unused_number(prefix, length)
        code = f"{secrets.randbelow(10**code_length):0{code_length}d}"
        currency = amount.currency if amount is not None else self.default_currency
        # Virtual cards are activated automatically when issued.
        card = Card(brand, number, code, "active", amount.value if amount is not None else 0, currency)
        self.cards[number] = card
        psp = self._record("issue", card, True)
        return Outcome(
            200,
            {
                "authCode": auth_code(),
                "currentBalance": card.money(),
                "paymentMethod": {"number": number, "securityCode": code, "type": brand},
                "pspReference": psp,
                "resultCode": "Success",
            },
        )

    def load(self, brand: str, number: str, pin: str | None, amount: Amount) -> Outcome:
        card = self._find(brand, number)
        if card is None:
            return self._refused("load", None, INVALID_CARD_NUMBER)
        if card.processor_error:
            return self._errored("load", card)
        if self._pin_refused(card, pin, required=False):
            return self._refused("load", card, INVALID_PIN)
        if card.status == "inactive":
            return self._refused("load", card, BLOCKED_CARD)
        if card.status == "pending":
            return self._refused("load", card, NOT_PERMITTED)
        if amount.currency != card.currency:
            return self._refused("load", card, INVALID_AMOUNT)
        card.balance += amount.value
        psp = self._record("load", card, True, amount=amount.value)
        return self._changed(card, psp)

    def activate(self, brand: str, number: str, pin: str | None, amount: Amount | None) -> Outcome:
        card = self._find(brand, number)
        if card is None:
            return self._refused("activate", None, INVALID_CARD_NUMBER)
        if card.processor_error:
            return self._errored("activate", card)
        if self._pin_refused(card, pin, required=False):
            return self._refused("activate", card, INVALID_PIN)
        if card.status == "inactive":
            return self._refused("activate", card, BLOCKED_CARD)
        if card.status == "active":
            return self._refused("activate", card, NOT_PERMITTED)
        # A preloaded card is activated without an amount or with exactly the preloaded one.
        if amount is not None and (amount.currency != card.currency or (card.balance and amount.value != card.balance)):
            return self._refused("activate", card, INVALID_AMOUNT)
        previous = card.balance
        card.status = "active"
        if amount is not None:
            card.balance = amount.value
        psp = self._record("activate", card, True, previous_status="pending", previous_balance=previous)
        return self._changed(card, psp)

    def deactivate(self, brand: str, number: str, pin: str | None) -> Outcome:
        card = self._find(brand, number)
        if card is None:
            return self._refused("deactivate", None, INVALID_CARD_NUMBER)
        if card.processor_error:
            return self._errored("deactivate", card)
        if self._pin_refused(card, pin, required=False):
            return self._refused("deactivate", card, INVALID_PIN)
        if card.status == "inactive":
            return self._refused("deactivate", card, BLOCKED_CARD)
        # An end state: the remaining value is no longer available to the shopper.
        card.status = "inactive"
        card.balance = 0
        psp = self._record("deactivate", card, True)
        return self._changed(card, psp)

    def void(self, original: str) -> Outcome | None:
        """None when ``original`` is not a pspReference this simulator gave out."""
        tx = self.transactions.get(original)
        if tx is None:
            return None
        card = tx.card
        if tx.voided or not tx.succeeded or card is None or tx.kind in ("checkBalance", "deactivate", "void"):
            return self._refused("void", card, NOT_PERMITTED)
        if card.status == "inactive":
            return self._refused("void", card, BLOCKED_CARD)
        if tx.kind == "load":
            if card.balance < tx.amount:
                return self._refused("void", card, NOT_ENOUGH_BALANCE)
            card.balance -= tx.amount
        elif tx.kind == "activate":
            card.status = tx.previous_status or "pending"
            card.balance = tx.previous_balance
        else:  # issue: the card is withdrawn
            card.status = "inactive"
            card.balance = 0
        tx.voided = True
        psp = self._record("void", card, True)
        return Outcome(200, {"currentBalance": card.money(), "pspReference": psp, "resultCode": "Success"})

    def _changed(self, card: Card, psp: str) -> Outcome:
        return Outcome(
            200, {"authCode": auth_code(), "currentBalance": card.money(), "pspReference": psp, "resultCode": "Success"}
        )

    def _unused_number(self, prefix: str, length: int) -> str:
        digits = length - len(prefix)
        while True:
            number = prefix + f"{secrets.randbelow(10**digits):0{digits}d}"
            if number not in self.cards:
                return number
