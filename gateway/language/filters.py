"""The filters a provider mapping needs, beyond Jinja's built-ins.

Each is a plain function registered by name in :data:`FILTERS`; the sandboxed environment is
built from this table, and lint reads it to know which filters exist. Errors are raised as
``ValueError`` subclasses whose messages never contain the value being filtered (it may be a
card number).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import quote

from . import money

_SEPARATORS = re.compile(r"[\s\-]+")


class FilterError(ValueError):
    """The mapping used a filter wrongly (a 502 `mapping_error`)."""


class InputError(FilterError):
    """NewStore's input cannot be used (a 400), as opposed to a mapping that is wrong (a 502)."""


def card_number(value: Any, case: str | None = None) -> str:
    """Strip spaces and dashes; ``case='upper'|'lower'`` folds the case too."""
    if not isinstance(value, str):
        raise FilterError("card_number expects a string")
    out = _SEPARATORS.sub("", value)
    if not out:
        raise InputError("the card number is empty once spaces and dashes are removed")
    if case is None:
        return out
    if case == "upper":
        return out.upper()
    if case == "lower":
        return out.lower()
    raise FilterError("card_number's case must be 'upper' or 'lower'")


def urlsegment(value: Any) -> str:
    """Percent-encode a value for use as one URL path segment (``/`` becomes ``%2F``)."""
    return quote(str(value), safe="")


def derive(key: Any, suffix: str) -> str:
    """A per-step key from the NewStore key: ``'k1' | derive('create')`` -> ``'k1-create'``."""
    if key is None or key == "":
        raise FilterError("derive needs a key; this request has no idempotence_key")
    return f"{key}-{suffix}"


def fit_key(key: Any, max_length: int, charset: str | None = None, min_length: int = 0) -> str:
    """Fit a key to a provider's limits.

    A key that already fits (length within ``min_length..max_length`` and, if ``charset`` is
    given as a regex character class body such as ``'A-Za-z0-9_-'``, made of those characters)
    is returned unchanged. Anything else becomes the SHA-256 hex digest cut to ``max_length``:
    stable for the same key (so retries reuse it) and, unlike plain truncation, different for
    long keys that share a prefix.
    """
    if key is None or key == "":
        raise FilterError("fit_key needs a key; this request has no idempotence_key")
    text = str(key)
    allowed = re.fullmatch(f"[{charset}]*", text) is not None if charset else True
    if min_length <= len(text) <= max_length and allowed:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    if max_length < 16 or min_length > len(digest):
        raise FilterError("fit_key cannot make a key of that length")
    return digest[:max_length]


def sha256(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def rfc3339(value: Any) -> str:
    """A timezone-aware datetime as RFC 3339 in UTC: ``2023-12-31T10:11:17Z``."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise FilterError("rfc3339 expects a timezone-aware datetime such as `now`")
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def max_exponent(currency: Any, places: int) -> str:
    """The currency code itself, if its ISO 4217 exponent is at most ``places``.

    For providers whose amounts have a fixed number of decimals whatever the currency (Radial's
    two): ``request.amount.currency | max_exponent(2)`` refuses KWD (3 decimals) as NewStore's
    input (:class:`InputError`, a 400 before anything is sent) instead of sending an amount
    the provider would misread or reject.
    """
    if isinstance(places, bool) or not isinstance(places, int) or places < 0:
        raise FilterError("max_exponent needs a whole number of decimal places")
    if not isinstance(currency, str):
        raise FilterError("max_exponent expects a currency code")
    try:
        exp = money.exponent(currency)
    except money.MoneyError:
        raise InputError(f"`{currency}` is not an ISO 4217 currency code") from None
    if exp > places:
        plural = "s" if places != 1 else ""
        raise InputError(f"{currency.upper()} amounts have {exp} decimal places; this provider takes amounts "
                         f"with at most {places} decimal place{plural}")
    return currency


def to_decimal(value: Any) -> Decimal:
    """``"10.50"`` or a JSON number -> ``Decimal``."""
    return money.to_decimal(value)


FILTERS: dict[str, Callable[..., Any]] = {
    "card_number": card_number,
    "urlsegment": urlsegment,
    "derive": derive,
    "fit_key": fit_key,
    "sha256": sha256,
    "rfc3339": rfc3339,
    "to_minor": money.to_minor,
    "from_minor": money.from_minor,
    "to_decimal_string": money.to_decimal_string,
    "to_decimal": to_decimal,
    "max_exponent": max_exponent,
}
