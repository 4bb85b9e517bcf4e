"""In-memory state of the simulated Shopify shop: gift cards and access tokens.

Gift cards follow the Admin GraphQL ``GiftCard`` object: money is a ``Decimal`` in the shop's
currency, serialised as a string; the full code is known only to the shop (the API shows it once, as
``giftCardCode`` of ``giftCardCreate``) and is matched case-insensitively.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from simulators.simkit import SimCore

from .schemas import SimGiftCardRequest

SEED_TIMESTAMP = "2024-01-01T00:00:00Z"
GID_PREFIX = "gid://shopify/GiftCard/"
CODE_PATTERN = re.compile(r"[A-Za-z0-9]+")
DEFAULT_TOKEN_LIFETIME = 86399  # client credentials tokens live about 24 hours (unverified exact value)
DEFAULT_SCOPES = ("read_gift_cards", "write_gift_cards", "read_gift_card_transactions", "write_gift_card_transactions")
TRANSACTION_GID_PREFIX = {"debit": "gid://shopify/GiftCardDebitTransaction/",
                          "credit": "gid://shopify/GiftCardCreditTransaction/"}
GENERATED_CODE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money_text(amount: Decimal) -> str:
    """Shopify's Decimal serialisation: plain notation, at least one fractional digit ("25.0", "25.5", "25.55")."""
    text = format(amount.normalize(), "f")
    return text if "." in text else text + ".0"


def masked(code: str) -> str:
    return "•••• •••• •••• " + code[-4:]


@dataclass
class GiftCard:
    number: int  # the numeric part of the gid
    code: str
    initial: Decimal
    balance: Decimal
    currency: str
    enabled: bool = True
    deactivated_at: str | None = None
    expires_on: str | None = None
    note: str | None = None
    template_suffix: str | None = None
    created_at: str = SEED_TIMESTAMP
    updated_at: str = SEED_TIMESTAMP

    @property
    def gid(self) -> str:
        return f"{GID_PREFIX}{self.number}"

    def expired(self, today: date) -> bool:
        return self.expires_on is not None and date.fromisoformat(self.expires_on) < today

    def graphql(self) -> dict[str, Any]:
        """Every field of the GraphQL ``GiftCard`` this simulator knows (selection happens later)."""
        return {
            "id": self.gid,
            "balance": {"amount": self.balance, "currencyCode": self.currency},
            "initialValue": {"amount": self.initial, "currencyCode": self.currency},
            "enabled": self.enabled,
            "deactivatedAt": self.deactivated_at,
            "expiresOn": self.expires_on,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "lastCharacters": self.code[-4:],
            "maskedCode": masked(self.code),
            "note": self.note,
            "templateSuffix": self.template_suffix,
            "customer": None,
            "order": None,
            "recipientAttributes": None,
        }

    def sim_view(self) -> dict[str, Any]:
        return {
            "id": self.gid,
            "code": self.code,
            "balance": money_text(self.balance),
            "initial_value": money_text(self.initial),
            "currency": self.currency,
            "enabled": self.enabled,
            "deactivated_at": self.deactivated_at,
            "expires_on": self.expires_on,
            "note": self.note,
        }


@dataclass(frozen=True)
class Token:
    value: str
    scopes: frozenset[str]
    expires_at: float | None  # None: the static admin token never expires


# number, code, initial value, balance, enabled, expires_on
SEEDS: tuple[tuple[int, str, str, str, bool, str | None], ...] = (
    (1001, "GIFT5000ENABLED", "50.00", "50.00", True, None),
    (1002, "GIFT2500PARTIAL", "100.00", "25.00", True, None),
    (1003, "GIFTEMPTY0000", "30.00", "0.00", True, None),
    (1004, "GIFTDISABLED15", "15.00", "15.00", False, None),
    (1005, "GIFTEXPIRED1000", "10.00", "10.00", True, "2023-12-31"),
)


def cursor_for(card: GiftCard) -> str:
    return base64.b64encode(f'{{"last_id":{card.number}}}'.encode()).decode()


def cursor_number(cursor: str) -> int | None:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    match = re.fullmatch(r'\{"last_id":(\d+)\}', text)
    return int(match.group(1)) if match else None


class ShopifySimulator(SimCore):
    card_schema = SimGiftCardRequest

    def __init__(
        self,
        admin_token: str,
        currency: str = "USD",
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
    ) -> None:
        self.admin_token = admin_token
        self.currency = currency
        self.scopes = frozenset(scopes)
        self.token_lifetime = token_lifetime
        super().__init__()

    def seed(self) -> None:
        self.cards: dict[int, GiftCard] = {}
        for number, code, initial, balance, enabled, expires in SEEDS:
            card = GiftCard(
                number, code, Decimal(initial), Decimal(balance), self.currency, enabled, expires_on=expires
            )
            if not enabled:
                card.deactivated_at = SEED_TIMESTAMP
            self.cards[number] = card
        self.next_number = 2001
        self.transactions: list[dict[str, Any]] = []  # every debit and credit, oldest first
        self.next_transaction_number = 5001
        self.tokens: dict[str, Token] = {self.admin_token: Token(self.admin_token, self.scopes, None)}

    def card_views(self) -> list[dict[str, Any]]:
        return [card.sim_view() for card in self.cards.values()]

    def put_card_from(self, body: SimGiftCardRequest) -> dict[str, Any]:
        existing = self.by_code(body.code)
        number = existing.number if existing else self._new_number()
        balance = Decimal(body.balance)
        card = GiftCard(
            number,
            body.code,
            Decimal(body.initial_value) if body.initial_value is not None else balance,
            balance,
            body.currency or self.currency,
            body.enabled,
            deactivated_at=None if body.enabled else iso_now(),
            expires_on=body.expires_on,
            note=body.note,
            created_at=iso_now(),
            updated_at=iso_now(),
        )
        self.cards[number] = card
        return card.sim_view()

    def _new_number(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    # --- tokens -------------------------------------------------------------------------------------

    def issue_token(self) -> dict[str, Any]:
        now = time.time()
        self.tokens = {
            key: token for key, token in self.tokens.items() if token.expires_at is None or token.expires_at > now
        }
        value = "shpat_" + secrets.token_hex(16)
        self.tokens[value] = Token(value, self.scopes, now + self.token_lifetime)
        return {"access_token": value, "scope": ",".join(sorted(self.scopes)), "expires_in": self.token_lifetime}

    def valid_token(self, value: str) -> Token | None:
        token = self.tokens.get(value)
        if token is None or (token.expires_at is not None and token.expires_at <= time.time()):
            return None
        return token

    # --- gift cards -----------------------------------------------------------------------------------

    def by_code(self, code: str) -> GiftCard | None:
        folded = code.casefold()
        return next((card for card in self.cards.values() if card.code.casefold() == folded), None)

    def by_gid(self, gid: str) -> GiftCard | None:
        if not gid.startswith(GID_PREFIX) or not gid[len(GID_PREFIX) :].isdigit():
            return None
        return self.cards.get(int(gid[len(GID_PREFIX) :]))

    def create(
        self, code: str | None, initial: Decimal, note: str | None, expires_on: str | None, template_suffix: str | None
    ) -> tuple[GiftCard, str]:
        """Call after validation. Returns the card and its full code (shown only this once)."""
        if code is None:
            while True:
                code = "".join(secrets.choice(GENERATED_CODE_ALPHABET) for _ in range(16))
                if self.by_code(code) is None:
                    break
        now = iso_now()
        card = GiftCard(
            self._new_number(),
            code,
            initial,
            initial,
            self.currency,
            note=note,
            expires_on=expires_on,
            template_suffix=template_suffix,
            created_at=now,
            updated_at=now,
        )
        self.cards[card.number] = card
        return card, code

    def transact(
        self, card: GiftCard, kind: str, amount: Decimal, note: str | None, processed_at: str
    ) -> dict[str, Any]:
        """Call after validation: debits or credits ``card`` and returns the GraphQL transaction.

        A debit transaction's ``amount`` is negative, as Shopify shows it ("-10.0").
        """
        card.balance = card.balance - amount if kind == "debit" else card.balance + amount
        card.updated_at = iso_now()
        number = self.next_transaction_number
        self.next_transaction_number += 1
        transaction = {
            "id": f"{TRANSACTION_GID_PREFIX[kind]}{number}",
            "amount": {"amount": -amount if kind == "debit" else amount, "currencyCode": card.currency},
            "giftCard": card.graphql(),  # the card as it is after the transaction
            "note": note,
            "processedAt": processed_at,
            "metafield": None,
            "metafields": None,
        }
        self.transactions.append({"kind": kind, "card": card.gid, **transaction})
        return transaction

    def deactivate(self, card: GiftCard) -> None:
        if card.enabled:
            card.enabled = False
            card.deactivated_at = card.updated_at = iso_now()
