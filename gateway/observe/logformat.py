"""One line per event for everything the gateway process prints: its own loggers, uvicorn's
error and access loggers, and the companions' output it relays.

``json`` (the default; for log pipelines): one JSON object per line, starting with ``ts``
(RFC 3339, UTC, milliseconds), ``level``, ``pid``, ``logger``, then ``event`` (structured
lines: ``webhook``, ``access``, ``idempotency_body_mismatch``, …) or ``msg`` (free text), then
``request_id``, ``provider`` and ``operation`` of the request the line was written for, then
the event's own fields. ``text`` (for development): the same content as one readable line.

Every line passes :func:`gateway.logs.redact` last, whatever wrote it: a run of 8 or more
digits anywhere leaves masked to its last 4.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Mapping

import msgspec

from ..logs import Fields, redact
from .context import SCOPE

FORMATS = ("json", "text")
_encode = msgspec.json.Encoder(enc_hook=str).encode
__all__ = ["FORMATS", "Fields", "configure", "formatter", "uvicorn_config"]


_last_second = -1
_last_prefix = ""


def timestamp(created: float) -> str:
    """``2026-11-22T04:01:38.123Z``; the part up to the second is formatted once a second."""
    global _last_second, _last_prefix
    second = int(created)
    if second != _last_second:
        _last_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = second
    return f"{_last_prefix}.{int((created - second) * 1000):03d}Z"


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    """What the line says besides its header: a structured message's fields, uvicorn's access
    line taken apart, or the message text."""
    if isinstance(record.msg, Fields):
        return record.msg.fields
    if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
        client, method, path, version, status = record.args
        return {"event": "access", "method": method, "path": path, "status": status, "client": client,
                "http_version": version}
    return {"msg": record.getMessage()}


def _line(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"ts": timestamp(record.created), "level": record.levelname.lower(),
                           "pid": record.process, "logger": record.name}
    fields = _fields(record)
    head = fields.get("event")
    if head is not None:
        out["event"] = head
    scope = SCOPE.get()
    if scope is not None:
        out["request_id"] = scope.request_id
        if scope.provider is not None:
            out["provider"] = scope.provider
            out["operation"] = scope.operation
    out.update(fields)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = _line(record)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return redact(_encode(out).decode())


class TextFormatter(logging.Formatter):
    """``2026-11-22T04:01:38.123Z INFO gateway.runtime.webhook [3f2c… sandbox/balance] webhook outcome=ok status=200 …``"""

    def format(self, record: logging.LogRecord) -> str:
        out = _line(record)
        head = f"{out.pop('ts')} {out.pop('level').upper():<7} {out.pop('logger')}"
        out.pop("pid")
        where = [out.pop("request_id", None), out.pop("provider", None)]
        operation = out.pop("operation", None)
        if where[0] is not None:
            head += " [" + " ".join(filter(None, [where[0], f"{where[1]}/{operation}" if where[1] else None])) + "]"
        words = [str(out.pop("event", None) or out.pop("msg", ""))]
        words += [f"{k}={_encode(v).decode() if not isinstance(v, str) or ' ' in v else v}" for k, v in out.items()]
        text = head + " " + " ".join(w for w in words if w)
        if record.exc_info:
            text += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return redact(text)


def formatter(fmt: str = "json") -> logging.Formatter:
    """The formatter for ``fmt`` (``json`` or ``text``); also the ``()`` factory of :func:`uvicorn_config`."""
    return TextFormatter() if fmt == "text" else JsonFormatter()


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Every logger of the process through one stderr handler in ``fmt``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def uvicorn_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers (startup lines, errors, access lines) write through
    the gateway's formatter, in the main process and in every worker, from their first line."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gateway": {"()": f"{__name__}.formatter", "fmt": fmt}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "gateway"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
