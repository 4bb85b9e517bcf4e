"""The first difference between what a case expects and what happened, as a JSON path."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING = _Missing()


def first_difference(expected: Any, actual: Any, path: str = "$", *, subset: bool = False) -> tuple[str, Any, Any] | None:
    """``(path, expected, actual)`` at the first place they differ, or None.

    With ``subset``, an object may carry keys the expectation does not list. Numbers compare by
    value (50, 50.0 and Decimal("50.00") are equal); booleans are not numbers.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return path, expected, actual
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}", value, MISSING
            found = first_difference(value, actual[key], f"{path}.{key}", subset=subset)
            if found:
                return found
        if not subset:
            for key in actual:
                if key not in expected:
                    return f"{path}.{key}", MISSING, actual[key]
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return path, expected, actual
        for i, value in enumerate(expected):
            if i >= len(actual):
                return f"{path}[{i}]", value, MISSING
            found = first_difference(value, actual[i], f"{path}[{i}]", subset=subset)
            if found:
                return found
        if len(actual) > len(expected):
            return f"{path}[{len(expected)}]", MISSING, actual[len(expected)]
        return None
    if _number(expected) and _number(actual):
        try:
            return None if Decimal(str(expected)) == Decimal(str(actual)) else (path, expected, actual)
        except InvalidOperation:
            return path, expected, actual
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if expected is actual else (path, expected, actual)
    return None if expected == actual else (path, expected, actual)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def describe(expected: Any, actual: Any, what: str, redactor: Any) -> list[str]:
    """The ``expected:`` / ``actual:`` lines of a difference, masked, yet telling the two apart.

    ``what`` names the place (``json body at $.pin``, ``header X-Api-Key``, ``url``); its last
    name decides how values there are masked, as ``redactor.data`` does. Where masking hides
    what differs, each side gets a fingerprint (:func:`gateway.redact.fingerprint`: equal
    values, equal fingerprints, within one run):

    - a PIN or secret (by name, or a known one on either side) is ``"***"`` on both sides, with
      its fingerprint and nothing else: no length, no position;
    - a card number (by name, or a known one on either side) shows its last 4 on each side,
      its length, its fingerprint and the first character where the two differ;
    - anything else is masked as text; if that hid something, fingerprints are added, and a
      note when the masked texts look the same.
    """
    from ...redact import card_key, fingerprint, secret_key, to_json

    key = _last_name(what)
    sides = [v for v in (expected, actual) if v is not MISSING]
    if secret_key(key) or any(redactor.is_secret(v) for v in sides):
        return [f"  expected: {_secret(expected, fingerprint)}", f"  actual:   {_secret(actual, fingerprint)}"]
    if any(redactor.is_card(v) for v in sides) or (card_key(key) and any(
            isinstance(v, (str, int)) and not isinstance(v, bool) and redactor.data(v, key) != v for v in sides)):
        lines = [f"  expected: {_card(expected, fingerprint)}", f"  actual:   {_card(actual, fingerprint)}"]
        if isinstance(expected, str) and isinstance(actual, str):
            at = next((i for i, (a, b) in enumerate(zip(expected, actual)) if a != b), min(len(expected), len(actual)))
            lines.append(f"  first difference at character {at + 1}")
        return lines
    shown = ["(missing)" if v is MISSING else to_json(redactor.data(v, key)) for v in (expected, actual)]
    hidden = any(v is not MISSING and redactor.data(v, key) != v for v in (expected, actual))
    if hidden:
        shown = [s if v is MISSING else f"{s} (fingerprint {fingerprint(v)})" for s, v in zip(shown, (expected, actual))]
    lines = [f"  expected: {shown[0]}", f"  actual:   {shown[1]}"]
    if hidden and to_json(redactor.data(expected, key)) == to_json(redactor.data(actual, key)):
        lines.append("  (they differ inside a masked value)")
    return lines


def _secret(value: Any, fingerprint: Any) -> str:
    if value is MISSING:
        return "(missing)"
    if isinstance(value, (dict, list)):
        return f"*** ({type(value).__name__}, fingerprint {fingerprint(value)})"
    return f'"***" (fingerprint {fingerprint(value)})'


def _card(value: Any, fingerprint: Any) -> str:
    from ...logs import mask_card
    from ...redact import to_json

    if value is MISSING:
        return "(missing)"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f"{type(value).__name__} (fingerprint {fingerprint(value)})"
    text = str(value)
    return f"{to_json(mask_card(text) or '****')} ({len(text)} characters, fingerprint {fingerprint(value)})"


def _last_name(what: str) -> str:
    """``json body at $.identifier.pin`` -> ``pin``; ``header X-Api-Key`` -> ``X-Api-Key``."""
    if what.startswith("header "):
        return what[len("header "):]
    if " at $" in what:
        path = what.split(" at $", 1)[1]
        # A list's items are masked by the list's name, as `Redactor.data` does.
        names = [n for n in re.split(r"[.\[\]]", path) if n and not n.isdigit()]
        return names[-1] if names else ""
    return ""
