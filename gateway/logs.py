"""Structured logs: one JSON line per webhook, card numbers masked, PINs and secrets never.

The webhook line is built from chosen fields only (never from bodies). As a second line of
defence every message passes :func:`redact`, which masks any run of 8 or more digits (with
spaces or dashes between them) to its last 4, so a card number that slipped into an error
message still leaves masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

logger = logging.getLogger("gateway.runtime.webhook")

_DIGIT_RUN = re.compile(r"(?<![\w])(?:\d[ \-]?){7,}\d(?![\w])")


def mask_card(number: str | None) -> str | None:
    """``6006491111111111`` -> ``****1111``; short values are fully masked."""
    if not number:
        return None
    clean = re.sub(r"[\s\-]", "", number)
    return "****" + clean[-4:] if len(clean) > 8 else "****"


def redact(text: str) -> str:
    return _DIGIT_RUN.sub(lambda m: mask_card(m.group(0)) or "****", text)


def webhook(**fields: Any) -> None:
    """Log one webhook outcome; ``fields`` must already be safe (masked)."""
    level = logging.INFO if fields.get("status", 500) < 500 and "warning" not in fields else logging.WARNING
    logger.log(level, redact(json.dumps({"event": "webhook", **fields}, default=str, separators=(",", ":"))))


class JsonLineFormatter(logging.Formatter):
    """Emits messages that are JSON already as they are; wraps anything else in a JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        if message.startswith("{"):
            return message
        out = {"event": "log", "level": record.levelname.lower(), "logger": record.name, "message": message}
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, separators=(",", ":"))


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
