"""Masking for everything the gateway prints about a request: dry runs, traces, test failures.

A :class:`Redactor` knows the sensitive values of one run (the NewStore request's card number
and PIN, in every normalised and URL-encoded spelling, PINs in its metadata, and the provider's
credentials) and masks them wherever they appear. Values under keys that name secrets or PINs
are starred; values under keys that name card numbers are cut to their last 4 characters. Any
other run of 8+ digits is masked too (``logs.redact``).

The rule for short values: a known value with at least :data:`MIN_NEEDLE` letters or digits is
masked wherever it occurs, even inside a longer text. A shorter one (a blank card number, a
2-digit PIN, a 1-character test key) is masked only where it is a whole field: a JSON value, a
header, a query parameter, a form field, an XML element's text or a URL path segment. Replacing
a blank or 1-character value inside texts would garble everything printed (``"".replace`` puts
the mask between every character) and hide nothing a reader could not see anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets as _random
from typing import Any, Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote

import msgspec

from .language import jsonexact
from .logs import mask_card, redact

MIN_NEEDLE = 4  # letters or digits a known value needs to be masked inside longer texts

# What names a credential or PIN, for masking and for lint's GW050 alike. A key holds a secret
# when its name, lowercased and without separators, contains one of SECRET_NAME_PARTS
# (``X-Api-Key``, ``client_secret``, ``accessToken``) or has one of SECRET_NAME_WORDS as a whole
# word (``pin`` but not ``shipping``) or as the whole name (``PINCODE``).
SECRET_NAME_PARTS = ("authorization", "apikey", "token", "secret", "password", "passwd", "passcode", "signature",
                     "credential")
SECRET_NAME_WORDS = frozenset({"pin", "pins", "pincode", "cvv", "cvv2", "cvc", "securitycode"})
_CARD_JOINED = {"number", "cardnumber", "cardno", "gan", "giftcardgan", "code", "pan", "paymentaccountuniqueid",
                "giftcardnumber", "giftcardcode", "cardcode", "vouchercode"}
_CARD_WORDS = {"number", "num", "no", "code", "gan", "pan"}


def _words(key: str) -> list[str]:
    """``giftCardCode`` -> [gift, card, code]; ``X-Api-Key`` -> [x, api, key]."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", key)]


def secret_key(key: str) -> bool:
    """A key whose value is a PIN, password, token or other credential."""
    if not key:
        return False
    words = _words(key)
    joined = "".join(words)
    return (any(part in joined for part in SECRET_NAME_PARTS) or joined in SECRET_NAME_WORDS
            or not SECRET_NAME_WORDS.isdisjoint(words))


def card_key(key: str) -> bool:
    """A key whose value may be a card number or gift card code."""
    if not key:
        return False
    words = _words(key)
    joined = "".join(words)
    return joined in _CARD_JOINED or ("card" in words and bool(_CARD_WORDS.intersection(words)))


def fingerprint(value: Any) -> str:
    """8 hex digits identifying ``value`` within this run only.

    Keyed with a random per-process key: equal values get equal fingerprints in one run's
    output, but a fingerprint cannot be recomputed outside it, so it cannot be turned back into
    a PIN or card number by trying every candidate (an unkeyed hash of a 6-digit PIN could).
    """
    return hmac.new(_RUN_KEY, to_json(value).encode(), hashlib.sha256).hexdigest()[:8]


_RUN_KEY = _random.token_bytes(32)


class Redactor:
    def __init__(self, cards: Iterable[str | None] = (), pins: Iterable[str | None] = (),
                 secrets: Iterable[str | None] = ()) -> None:
        self._long: list[tuple[str, str]] = []  # masked wherever they occur
        self._short: dict[str, str] = {}  # masked only as whole fields
        self._cards: set[str] = set()
        self._secrets: set[str] = set()
        for card in cards:
            self.add_card(card)
        for value in [*pins, *secrets]:
            self.add_secret(value)

    @classmethod
    def for_request(cls, request: Any, secrets: Iterable[str | None] = ()) -> Redactor:
        identifier = getattr(request, "identifier", None)
        cards = [getattr(identifier, "number", None), getattr(request, "card_number", None)]
        pins = [getattr(identifier, "pin", None), getattr(request, "pin", None)]
        redactor = cls(cards, pins, secrets)
        redactor.learn(getattr(request, "metadata", None))  # e.g. Radial takes a PIN from metadata.pin
        return redactor

    # --- what is sensitive --------------------------------------------------------------------

    def add_card(self, card: Any) -> None:
        if not isinstance(card, str) or not card.strip():
            return
        for variant in _spellings(card):
            self._cards.add(variant)
            self._add(variant, mask_card(variant) or "****")

    def add_secret(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return
        text = str(value).strip()
        if not text:
            return
        self._secrets.add(text)
        self._add(text, "***")
        for variant in {quote(text, safe=""), quote_plus(text)}:
            self._add(variant, "***")

    def learn(self, value: Any, key: str = "") -> None:
        """Take every value under a card or PIN/secret key in ``value`` (any JSON-like data) as
        sensitive: a test case's expectations, a request's metadata."""
        if isinstance(value, dict):
            for k, v in value.items():
                self.learn(v, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                self.learn(v, key)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            if secret_key(key):
                self.add_secret(value)
            elif card_key(key) and _card_like(str(value)):
                self.add_card(str(value))

    def _add(self, needle: str, mask: str) -> None:
        needle = needle.strip()
        if not needle:
            return
        if sum(c.isalnum() for c in needle) >= MIN_NEEDLE:
            if (needle, mask) not in self._long:
                self._long.append((needle, mask))
                # Longest first, so a card number is masked before a PIN that happens to be inside it.
                self._long.sort(key=lambda pair: -len(pair[0]))
        else:
            self._short.setdefault(needle, mask)

    def is_secret(self, value: Any) -> bool:
        """``value`` is, as a whole, a known PIN or secret."""
        return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip() in self._secrets

    def is_card(self, value: Any) -> bool:
        return isinstance(value, (str, int)) and not isinstance(value, bool) and (
            str(value).strip() in self._cards or _plain(str(value)) in self._cards)

    # --- masking ------------------------------------------------------------------------------

    def field(self, value: str) -> str:
        """A whole field's value: short known values are masked here too."""
        short = self._short.get(value.strip())
        if short is not None:
            return short
        return self.text(value)

    def text(self, value: str) -> str:
        """Free text: known values of :data:`MIN_NEEDLE`+ characters, XML elements that name a
        card or PIN, and runs of 8+ digits are masked."""
        for secret, mask in self._long:
            if secret in value:
                value = value.replace(secret, mask)
        if "<" in value:
            value = _XML_ELEMENT.sub(self._xml_element, value)
        return redact(value)

    def url(self, value: str) -> str:
        """A URL: each path segment and query parameter is a field of its own."""
        base, sep, query = value.partition("?")
        scheme, slashes, rest = base.partition("://")
        if not slashes:
            scheme, rest = "", base
        segments = rest.split("/")
        masked = [segments[0]] + [self._segment(s) for s in segments[1:]]
        out = (scheme + slashes if slashes else "") + "/".join(masked)
        if sep:
            out += "?" + self.query(parse_qsl(query, keep_blank_values=True))
        return self.text(out)

    def query(self, pairs: Iterable[tuple[str, Any]]) -> str:
        """Query or form fields, shown as ``name=value&...`` with each value masked by its name."""
        shown = []
        for name, value in pairs:
            masked = self.data(value, str(name))
            shown.append(f"{self.text(str(name))}={masked if isinstance(masked, str) else to_json(masked)}")
        return "&".join(shown)

    def _segment(self, segment: str) -> str:
        if segment and unquote(segment).strip() in self._short:
            return self._short[unquote(segment).strip()]
        return segment

    def _xml_element(self, match: re.Match[str]) -> str:
        tag, attrs, content = match.group(1), match.group(2) or "", match.group(3)
        local = tag.rsplit(":", 1)[-1]
        if content.startswith("*"):
            pass  # masked already
        elif secret_key(local) and content.strip():
            content = "***"
        elif card_key(local) and (_card_like(content) or self.is_card(content)):
            content = mask_card(content) or "****"
        else:
            content = self._short.get(content.strip(), content)
        return f"<{tag}{attrs}>{content}</{tag}>"

    def data(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v, str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v, key) for v in value]
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (bytes, bytearray)):
            # An answer that could not be parsed: show it as text (JSON would print it as base64,
            # unreadable and unmasked).
            return self.text(bytes(value).decode("utf-8", errors="replace"))
        if key and secret_key(key):
            return "***"
        if key and card_key(key) and isinstance(value, (str, int)) and (_card_like(str(value)) or self.is_card(value)):
            return mask_card(str(value)) or "****"
        if isinstance(value, str):
            return self.field(value)
        if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
            masked = self.text(str(value))  # a card number or PIN sent as a JSON number
            return masked if masked != str(value) else value
        return value


_XML_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)(\s[^<>]*)?>([^<]*)</\1\s*>")


def to_json(value: Any) -> str:
    """Compact JSON for display; exact decimals stay numbers (50.00, not "50.00")."""
    try:
        return jsonexact.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return json.dumps(value, default=str, ensure_ascii=False)


def _card_like(value: str) -> bool:
    """A card number or code: long enough and with digits (`invalid_pin` under `code` is not)."""
    return len(value) >= 6 and any(c.isdigit() for c in value)


def _plain(card: str) -> str:
    return re.sub(r"[\s\-]", "", card)


def _spellings(card: str) -> set[str]:
    plain = _plain(card)
    variants = {card.strip(), plain, plain.upper(), plain.lower()}
    return {v for v in variants | {quote(v, safe="") for v in variants} | {quote_plus(v) for v in variants}
            if v.strip()}

