"""Masking for everything the gateway prints about a request: dry runs, traces, test failures.

A :class:`Redactor` knows the sensitive strings of one run (the NewStore request's card number
and PIN, in every normalised spelling, and the provider's credentials) and replaces them
wherever they appear; values under keys that name secrets or PINs are starred, and values under
keys that name card numbers are cut to their last 4 characters. Any other run of 8+ digits is
masked too (``logs.redact``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

import msgspec

from .logs import mask_card, redact

_SECRET_KEYS = re.compile(r"^(pin|securitycode|cvv|cvc|password|passwd|secret|client_secret|token|access_token|"
                          r"api[-_]?key|x-api-key|authorization|signature|x-app-token|apikey)$", re.I)
_CARD_KEYS = re.compile(r"^(number|card_number|cardnumber|gan|gift_card_gan|code|paymentaccountuniqueid)$", re.I)


class Redactor:
    def __init__(self, cards: Iterable[str | None] = (), pins: Iterable[str | None] = (),
                 secrets: Iterable[str | None] = ()) -> None:
        self._replacements: list[tuple[str, str]] = []
        for card in filter(None, cards):
            for variant in _spellings(card):
                self._replacements.append((variant, mask_card(variant) or "****"))
        for value in filter(None, [*pins, *secrets]):
            self._replacements.append((value, "***"))
        # Longest first, so a card number is masked before a PIN that happens to be inside it.
        self._replacements.sort(key=lambda pair: -len(pair[0]))

    @classmethod
    def for_request(cls, request: Any, secrets: Iterable[str] = ()) -> Redactor:
        identifier = getattr(request, "identifier", None)
        cards = [getattr(identifier, "number", None), getattr(request, "card_number", None)]
        pins = [getattr(identifier, "pin", None), getattr(request, "pin", None)]
        return cls(cards, [p for p in pins if p and len(p) >= 3], secrets)

    def text(self, value: str) -> str:
        for secret, mask in self._replacements:
            if secret in value:
                value = value.replace(secret, mask)
        return redact(value)

    def data(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.data(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v, key) for v in value]
        if value is None or isinstance(value, bool):
            return value
        if key and _SECRET_KEYS.match(key):
            return "***"
        if key and _CARD_KEYS.match(key) and isinstance(value, (str, int)) and _card_like(str(value)):
            return mask_card(str(value)) or "****"
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
            masked = self.text(str(value))  # a card number or PIN sent as a JSON number
            return masked if masked != str(value) else value
        return value


_encoder = msgspec.json.Encoder(decimal_format="number")


def to_json(value: Any) -> str:
    """Compact JSON for display; exact decimals stay numbers (50.00, not "50.00")."""
    try:
        return _encoder.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return json.dumps(value, default=str, ensure_ascii=False)


def _card_like(value: str) -> bool:
    """A card number or code: long enough and with digits (`invalid_pin` under `code` is not)."""
    return len(value) >= 6 and any(c.isdigit() for c in value)


def _spellings(card: str) -> set[str]:
    plain = re.sub(r"[\s\-]", "", card)
    return {card, plain, plain.upper(), plain.lower()}
