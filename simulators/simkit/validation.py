"""Strict JSON body decoding, and msgspec's validation messages turned into structured problems.

Providers word validation errors differently (Adyen: an error code per field, Square: one error
per field with ``EXPECTED_INTEGER``, ``MISSING_REQUIRED_PARAMETER``...). :func:`explain` gives
them what msgspec found (kind, JSON path, names) so each can build its own error body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import msgspec

from .dialect import SimError

Body = TypeVar("Body")

ProblemKind = Literal["syntax", "type", "missing", "unknown", "range", "length", "pattern", "enum", "invalid"]

_AT = re.compile(r"^(?P<text>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_RANGE = re.compile(r"^Expected `(?P<expected>int|float|number)` (?P<op>[<>]=?) (?P<bound>\S+)$")
_LENGTH = re.compile(r"^Expected `(?P<expected>\w+)` of length (?P<op>[<>]=?) (?P<bound>\d+)$")
_PATTERN = re.compile(r"^Expected `str` matching regex ")
_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request body."""

    kind: ProblemKind
    path: str  # dotted JSON path of the offending value ("" for the root), e.g. "amount.value", "items[0]"
    message: str  # msgspec's own message
    expected: str | None = None  # "int", "str", "object"... (type, range, length)
    got: str | None = None  # "float", "str", "null"... (type)
    op: str | None = None  # ">=", "<="... (range, length)
    bound: str | None = None  # the limit (range, length)
    value: str | None = None  # the rejected enum value, as msgspec quotes it

    @property
    def field(self) -> str:
        """The last path component ("value" for "amount.value"), without list indexes."""
        last = self.path.rsplit(".", 1)[-1]
        return last.split("[", 1)[0]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def explain(exc: msgspec.DecodeError) -> Problem:
    """Turns a msgspec decoding error into a :class:`Problem`."""
    message = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return Problem("syntax", "", message)
    match = _AT.match(message)
    assert match is not None  # the pattern matches any string
    text = match.group("text")
    path = (match.group("path") or "").lstrip(".")
    if m := _MISSING.match(text):
        return Problem("missing", _join(path, m.group("name")), message)
    if m := _UNKNOWN.match(text):
        return Problem("unknown", _join(path, m.group("name")), message)
    if m := _TYPE.match(text):
        return Problem("type", path, message, expected=m.group("expected"), got=m.group("got"))
    if m := _RANGE.match(text):
        return Problem("range", path, message, expected=m.group("expected"), op=m.group("op"), bound=m.group("bound"))
    if m := _LENGTH.match(text):
        return Problem("length", path, message, expected=m.group("expected"), op=m.group("op"), bound=m.group("bound"))
    if _PATTERN.match(text):
        return Problem("pattern", path, message)
    if m := _ENUM.match(text):
        return Problem("enum", path, message, value=m.group("value").strip("'\""))
    return Problem("invalid", path, message)


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_strict(raw: bytes, schema: type[Body]) -> Body:
    """msgspec's strict decoding: no str -> int coercion, floats are not ints, unknown fields per schema."""
    return msgspec.json.decode(raw, type=schema, strict=True)


def decode_neutral(content_type: str | None, raw: bytes, schema: type[Body]) -> Body:
    """The kit's own rules (``/_sim`` bodies, the sandbox API): 415 unless JSON, 400 with msgspec's message."""
    if raw and media_type(content_type) != "application/json":
        raise SimError(415, "unsupported_media_type", "request bodies must be sent as Content-Type: application/json")
    if not raw:
        raise SimError(400, "invalid_request", "a JSON request body is required")
    try:
        return decode_strict(raw, schema)
    except msgspec.DecodeError as exc:  # also covers msgspec.ValidationError
        raise SimError(400, "invalid_request", str(exc)) from None


def json_value(raw: bytes) -> Any:
    """The body as a plain JSON value, to compare two requests regardless of key order and spacing."""
    return msgspec.json.decode(raw)


# ISO 4217 codes the simulators accept in money amounts (a provider-typical subset, exponents
# 0, 2 and 3 all present); any other three letters is each provider's own "unsupported currency".
CURRENCIES = frozenset(
    "AUD BHD CAD CHF CNY CZK DKK EUR GBP HKD HUF JOD JPY KRW KWD MXN NOK NZD OMR PLN SEK SGD TND USD ZAR".split()
)
