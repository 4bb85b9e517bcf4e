"""Status specs: the ``status`` of an error rule, read once at compile time.

A spec is a code (``404``), a class (``"4xx"``) or a list of them; it stands for a set of HTTP
statuses. The compiled plan keeps that set, so the request path only asks ``status in rule.statuses``
and lint's shadowing check compares sets.
"""

from __future__ import annotations

import re

_CLASS = re.compile(r"[1-5]xx")


class StatusSpecError(ValueError):
    """An item of a status spec that is neither a code from 100 to 599 nor a class like ``4xx``."""

    def __init__(self, item: object) -> None:
        self.item = item
        super().__init__(f"`{item}` is not an HTTP status: write a code like 404 or a class like \"4xx\"")


def parse_statuses(spec: int | str | list[int | str]) -> frozenset[int]:
    """``404`` -> {404}; ``"4xx"`` -> {400..499}; a list -> the union. Raises :class:`StatusSpecError`."""
    out: set[int] = set()
    for item in spec if isinstance(spec, list) else [spec]:
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            out.add(item)
        elif isinstance(item, str) and _CLASS.fullmatch(item):
            first = int(item[0]) * 100
            out.update(range(first, first + 100))
        else:
            raise StatusSpecError(item)
    return frozenset(out)
