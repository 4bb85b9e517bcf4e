"""The first difference between what a case expects and what happened, as a JSON path."""

from __future__ import annotations

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
