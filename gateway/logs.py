"""Structured logs: one line per webhook, card numbers masked, PINs and secrets never.

The webhook line is built from chosen fields only (never from bodies). As a second line of
defence every line passes :func:`redact`, which masks any run of 8 or more digits (with
spaces or dashes between them) to its last 4, so a card number that slipped into an error
message still leaves masked. How lines are written (JSON or text, with timestamp, pid and the
request's id): :mod:`gateway.observe.logformat`.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable, Mapping

import msgspec

from .observe import context

logger = logging.getLogger("gateway.runtime.webhook")

_SEPARATORS = re.compile(r"[\s\-]")
_DIGIT_RUN = re.compile(r"(?<![\w])(?:\d[ \-]?){7,}\d(?![\w])")
_encode = msgspec.json.Encoder(enc_hook=str).encode


def mask_card(number: str | None) -> str | None:
    """``6006491111111111`` -> ``****1111``; short values are fully masked."""
    if not number:
        return None
    clean = _SEPARATORS.sub("", number)
    return "****" + clean[-4:] if len(clean) > 8 else "****"


def redact(text: str) -> str:
    return _DIGIT_RUN.sub(lambda m: mask_card(m.group(0)) or "****", text)


class Fields:
    """A structured log message: ``logger.info(Fields({"event": "webhook", ...}))``.

    The gateway's formatters merge the fields into the line; anything else that reads the record
    (pytest's caplog, a foreign handler) gets them as one JSON object, so nothing is lost there."""

    __slots__ = ("fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return redact(_encode(self.fields).decode())


def event(log: logging.Logger, level: int, name: str, **fields: Any) -> None:
    """One structured line ``{"event": name, **fields}``; ``fields`` must already be safe (masked)."""
    log.log(level, Fields({"event": name, **fields}))


# Writes a structured line without the logging machinery when that gives the same line
# (gateway.observe.logformat installs it with its own handler); answers False when it cannot.
_direct: Callable[[logging.Logger, int, Mapping[str, Any]], bool] | None = None


def write_directly(writer: Callable[[logging.Logger, int, Mapping[str, Any]], bool] | None) -> None:
    global _direct
    _direct = writer


def webhook(**fields: Any) -> None:
    """Log one webhook outcome; ``fields`` must already be safe (masked). A field that is None
    is left out (an issue whose card number is not known logs no ``card``, not ``null``)."""
    write_webhook(*webhook_line(fields))


def webhook_line(fields: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """The level and the line of a webhook outcome (see :func:`webhook`), and the outcome given to
    the request's server span at once; the line itself may be written a moment later
    (:func:`write_webhook`, as the webhook handler does once its answer is sent)."""
    fields = {k: v for k, v in fields.items() if v is not None}
    level = logging.INFO if fields.get("status", 500) < 500 and "warning" not in fields else logging.WARNING
    scope = context.current()
    if scope is not None:  # the server span reports the same outcome
        scope.result = fields
    return level, {"event": "webhook", **fields}


def write_webhook(level: int, line: Mapping[str, Any]) -> None:
    """Write a line made by :func:`webhook_line`."""
    if _direct is None or not _direct(logger, level, line):
        logger.log(level, Fields(line))
