"""In-memory state of the simulated Voucherify project: gift vouchers and OAuth tokens.

Voucherify answers every refusal with an HTTP error and its error object
(``{code, key, message, details, request_id, ...}``); business operations here return an
:class:`Outcome` (status + payload) that the routes send as is.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from simulators.simkit import SimCore

from .ledger import Ledger

from .schemas import BalanceBody, CodeConfig, SimVoucherRequest

SEED_TIMESTAMP = "2024-01-01T00:00:00.000Z"
DEFAULT_TOKEN_LIFETIME = 900  # seconds, as documented for POST /v1/oauth/token
MAX_TOKENS = 1000  # "You can generate up to 1000 OAuth tokens per project."
DEFAULT_CODE_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def iso_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def request_id() -> str:
    return "v-" + secrets.token_hex(9)


def parse_timestamp(value: str) -> datetime | None:
    """ISO 8601 (date or date-time; a naive date-time is taken as UTC); None if unparsable."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def normalise_timestamp(value: str | None) -> str | None:
    """Voucherify echoes dates as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if value is None:
        return None
    parsed = parse_timestamp(value)
    assert parsed is not None  # validated by the caller
    parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def error(status: int, key: str, message: str, details: str | None = None, **extra: Any) -> Outcome:
    payload: dict[str, Any] = {"code": status, "key": key, "message": message}
    if details is not None:
        payload["details"] = details
    payload["request_id"] = request_id()
    payload.update(extra)
    return Outcome(status, payload)


def not_found(identifier: str) -> Outcome:
    return error(
        404,
        "not_found",
        "Resource not found",
        f"Cannot find voucher with id {identifier}",
        resource_id=identifier,
        resource_type="voucher",
    )


@dataclass(frozen=True)
class Outcome:
    status: int
    payload: dict[str, Any]


@dataclass
class Voucher:
    id: str
    code: str
    amount: int  # gift.amount: total income over the card's lifetime, cents
    balance: int  # gift.balance: available funds, cents
    active: bool = True
    effect: str = "APPLY_TO_ORDER"
    category: str | None = None
    additional_info: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    start_date: str | None = None
    expiration_date: str | None = None
    created_at: str = field(default_factory=iso_now)
    updated_at: str | None = None
    redeemed_quantity: int = 0  # successful redemptions not rolled back
    redeemed_amount: int = 0  # credits ever redeemed (a rollback gives the redemption back, not the amount)

    @property
    def subtracted_amount(self) -> int:
        return self.amount - self.balance

    def expired(self, now: datetime) -> bool:
        end = parse_timestamp(self.expiration_date) if self.expiration_date else None
        return end is not None and end < now

    def not_started(self, now: datetime) -> bool:
        start = parse_timestamp(self.start_date) if self.start_date else None
        return start is not None and start > now

    def view(self) -> dict[str, Any]:
        """The voucher object as GET /v1/vouchers/{code} returns it (documented field order)."""
        encoded = quote(self.code, safe="")
        return {
            "id": self.id,
            "code": self.code,
            "campaign": None,
            "campaign_id": None,
            "category": self.category,
            "category_id": None,
            "categories": [],
            "type": "GIFT_VOUCHER",
            "discount": None,
            "gift": {
                "amount": self.amount,
                "subtracted_amount": self.subtracted_amount,
                "balance": self.balance,
                "effect": self.effect,
            },
            "loyalty_card": None,
            "start_date": self.start_date,
            "expiration_date": self.expiration_date,
            "validity_timeframe": None,
            "validity_day_of_week": None,
            "validity_hours": None,
            "active": self.active,
            "additional_info": self.additional_info,
            "metadata": self.metadata,
            "assets": {
                "qr": {"id": "sim-qr-" + self.id, "url": f"https://sim.invalid/assets/qr/{self.id}"},
                "barcode": {"id": "sim-barcode-" + self.id, "url": f"https://sim.invalid/assets/barcode/{self.id}"},
            },
            "is_referral_code": False,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "holder_id": None,
            "referrer_id": None,
            "validation_rules_assignments": {"object": "list", "data_ref": "data", "data": [], "total": 0},
            "redemption": {
                "quantity": None,
                "redeemed_quantity": self.redeemed_quantity,
                "redeemed_amount": self.redeemed_amount,
                "object": "list",
                "url": f"/v1/vouchers/{encoded}/redemptions?page=1&limit=10",
            },
            "publish": {"object": "list", "count": 0, "url": f"/v1/vouchers/{encoded}/publications?page=1&limit=10"},
            "object": "voucher",
        }


@dataclass(frozen=True)
class Token:
    access_token: str
    scope: str
    expires_at: float  # epoch seconds

    def allows_vouchers(self) -> bool:
        return self.allows("vouchers")

    def allows(self, scope: str) -> bool:
        return bool({"api", scope} & set(self.scope.split()))


def seed_id(code: str) -> str:
    """Seed vouchers get stable IDs (the same after every reset), derived from their code."""
    return "v_" + hashlib.sha256(code.encode()).hexdigest()[:32]


# code, lifetime amount, balance, active, expiration_date
SEEDS: tuple[tuple[str, int, int, bool, str | None], ...] = (
    ("GIFT-ACTIVE-5000", 5000, 5000, True, None),
    ("GIFT-PARTIAL-2500", 10000, 2500, True, None),
    ("GIFT-EMPTY-0000", 3000, 0, True, None),
    ("GIFT-DISABLED-1500", 1500, 1500, False, None),
    ("GIFT-EXPIRED-1000", 1000, 1000, True, "2023-12-31T23:59:59.000Z"),
    ("GIFT/2024 #1", 7500, 7500, True, None),
)


class VoucherifySimulator(SimCore, Ledger):
    card_schema = SimVoucherRequest

    def __init__(self, app_id: str, token_lifetime: int = DEFAULT_TOKEN_LIFETIME) -> None:
        self.app_id = app_id
        self.token_lifetime = token_lifetime
        super().__init__()

    def seed(self) -> None:
        self.vouchers: dict[str, Voucher] = {}
        for code, amount, balance, active, expires in SEEDS:
            voucher = Voucher(
                seed_id(code), code, amount, balance, active, expiration_date=expires, created_at=SEED_TIMESTAMP
            )
            self.vouchers[code] = voucher
        self.tokens: dict[str, Token] = {}
        self.seed_ledger()

    def card_views(self) -> list[dict[str, Any]]:
        return [voucher.view() for voucher in self.vouchers.values()]

    def put_card_from(self, body: SimVoucherRequest) -> dict[str, Any]:
        amount = body.amount if body.amount is not None else body.balance
        voucher = Voucher(
            seed_id(body.code),
            body.code,
            max(amount, body.balance),
            body.balance,
            body.active,
            start_date=normalise_timestamp(body.start_date) if body.start_date else None,
            expiration_date=normalise_timestamp(body.expiration_date) if body.expiration_date else None,
        )
        self.vouchers[body.code] = voucher
        return voucher.view()

    # --- OAuth tokens ------------------------------------------------------------------------------

    def issue_token(self, scope: str) -> dict[str, Any]:
        now = time.time()
        self.tokens = {key: token for key, token in self.tokens.items() if token.expires_at > now}
        if len(self.tokens) >= MAX_TOKENS:  # oldest first out, to stay within the documented cap
            oldest = min(self.tokens.values(), key=lambda token: token.expires_at)
            del self.tokens[oldest.access_token]
        access_token = secrets.token_urlsafe(37)[:50]
        expires_at = int(now) + self.token_lifetime
        self.tokens[access_token] = Token(access_token, scope, expires_at)
        return {
            "access_token": access_token,
            "client_id": self.app_id,
            "expires_at": expires_at,
            "expires_in": self.token_lifetime,
            "scope": scope,
            "token_type": "Bearer",
        }

    def valid_token(self, access_token: str) -> Token | None:
        token = self.tokens.get(access_token)
        if token is None or token.expires_at <= time.time():
            return None
        return token

    # --- vouchers --------------------------------------------------------------------------------

    def find(self, identifier: str) -> Voucher | None:
        """By code (case-sensitive) or by the ``v_...`` ID Voucherify assigned."""
        voucher = self.vouchers.get(identifier)
        if voucher is None and identifier.startswith("v_"):
            voucher = next((v for v in self.vouchers.values() if v.id == identifier), None)
        return voucher

    def get(self, identifier: str) -> Outcome:
        voucher = self.find(identifier)
        if voucher is None:
            return not_found(identifier)
        return Outcome(200, voucher.view())

    def list(self, limit: int, page: int) -> Outcome:
        ordered = sorted(self.vouchers.values(), key=lambda v: v.created_at, reverse=True)
        chunk = ordered[(page - 1) * limit : page * limit]
        return Outcome(
            200,
            {
                "object": "list",
                "data_ref": "vouchers",
                "vouchers": [v.view() for v in chunk],
                "total": len(ordered),
            },
        )

    def create(self, code: str, spec: dict[str, Any]) -> Outcome:
        """``spec`` is validated already: amount, effect, active, category, additional_info, metadata, dates."""
        if code in self.vouchers:
            return error(
                409,
                "duplicate_found",
                "Duplicated resource found",
                f"Duplicated voucher exists with id {code}",
                resource_id=code,
                resource_type="voucher",
            )
        voucher = Voucher(
            "v_" + uuid.uuid4().hex,
            code,
            spec["amount"],
            spec["amount"],
            spec["active"],
            effect=spec["effect"],
            category=spec["category"],
            additional_info=spec["additional_info"],
            metadata=spec["metadata"],
            start_date=spec["start_date"],
            expiration_date=spec["expiration_date"],
        )
        self.vouchers[code] = voucher
        return Outcome(200, voucher.view())

    def generate_code(self, config: CodeConfig | None) -> str:
        """A fresh code: ``code_config`` (pattern with ``#`` placeholders, or length + charset), prefix, postfix."""
        charset = (config.charset if config and config.charset else None) or DEFAULT_CODE_CHARSET
        while True:
            if config and config.pattern:
                body = "".join(secrets.choice(charset) if ch == "#" else ch for ch in config.pattern)
            else:
                length = (config.length if config and config.length else None) or 8
                body = "".join(secrets.choice(charset) for _ in range(length))
            code = f"{(config.prefix or '') if config else ''}{body}{(config.postfix or '') if config else ''}"
            if code not in self.vouchers:
                return code

    def set_active(self, identifier: str, active: bool) -> Outcome:
        voucher = self.find(identifier)
        if voucher is None:
            return not_found(identifier)
        if voucher.active != active:
            voucher.active = active
            voucher.updated_at = iso_now()
        return Outcome(200, voucher.view())

    def adjust_balance(self, identifier: str, body: BalanceBody) -> Outcome:
        voucher = self.find(identifier)
        if voucher is None:
            return not_found(identifier)
        now = datetime.now(UTC)
        if not voucher.active:
            return error(400, "voucher_disabled", "voucher is disabled", f"Voucher {voucher.code} is disabled")
        if voucher.expired(now):
            return error(400, "voucher_expired", "voucher expired", f"Voucher {voucher.code} expired")
        if voucher.not_started(now):
            return error(400, "voucher_not_active", "voucher not active", f"Voucher {voucher.code} is not active yet")
        if voucher.balance + body.amount < 0:
            return error(
                400,
                "gift_amount_exceeded",
                "gift amount exceeded",
                f"The amount to remove exceeds the voucher balance ({voucher.balance})",
            )
        voucher.amount += body.amount
        voucher.balance += body.amount
        voucher.updated_at = iso_now()
        kind = "CREDITS_ADDITION" if body.amount > 0 else "CREDITS_REMOVAL"
        self.record_transaction(voucher, kind, body.amount, voucher.updated_at, source_id=body.source_id,
                                source="API", reason=body.reason)
        return Outcome(
            200,
            {
                "amount": body.amount,
                "total": voucher.amount,
                "balance": voucher.balance,
                "type": "gift_voucher",
                "operation_type": "MANUAL",
                "object": "balance",
                "related_object": {"type": "voucher", "id": voucher.id},
            },
        )
