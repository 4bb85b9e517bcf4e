"""One line per event for everything the gateway process prints: its own loggers, uvicorn's
error and access loggers, and the companions' output it relays.

``json`` (the default; for log pipelines): one JSON object per line, starting with ``ts``
(RFC 3339, UTC, milliseconds), ``level``, ``pid``, ``logger``, then ``event`` (structured
lines: ``webhook``, ``access``, ``idempotency_body_mismatch``, …) or ``msg`` (free text), then
``request_id``, ``provider`` and ``operation`` of the request the line was written for, then
the event's own fields. ``text`` (for development): the same content as one readable line.

Every line passes :func:`gateway.logs.redact` last, whatever wrote it: a run of 8 or more
digits anywhere leaves masked to its last 4 (a JSON line of texts and short numbers, such as the
webhook line, has each text redacted instead of the whole line: the same result, cheaper).
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import sys
import time
from typing import Any, Mapping

import msgspec

from .. import logs
from ..logs import Fields, redact
from .context import SCOPE

FORMATS = ("json", "text")
_encode = msgspec.json.Encoder(enc_hook=str).encode
# A cheap first look: a text without two digits side by side (or one space or dash apart) holds no
# run of 8 digits, so there is nothing to mask.
_DIGITS = re.compile(r"\d[ \-]?\d")
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
    return _head_and(record.created, record.levelname, record.process, record.name, _fields(record))


def _head_and(created: float, levelname: str, pid: int | None, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ts": timestamp(created), "level": levelname.lower(), "pid": pid, "logger": name}
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


_MASKED_ALREADY = frozenset({"ts", "card"})  # a timestamp; the webhook line's card (logs.mask_card: "****" + 4)
_SMALL = 10_000_000  # a number below this has 7 digits at most: it cannot be a card number


def _masked_values(out: dict[str, Any]) -> dict[str, Any] | None:
    """``out`` with every text value passed through :func:`redact`, or None when a value is
    something else than a short number or a text (then the whole line is redacted instead).

    The same masking as redacting the encoded line, for a fraction of its cost on the webhook
    line (the regular expression runs over a few short values, not ~300 characters): a digit
    run cannot span two values of the encoded line, whose separators are not digits, spaces or dashes."""
    for key, value in out.items():
        if type(value) is str:
            if (len(value) >= 8 and key not in _MASKED_ALREADY and _DIGITS.search(value)
                    and not (value.isalnum() and not value.isdigit())):
                # (a word of letters and digits, not digits only, has no run the mask would take:
                # a run must have no word character on either side; request ids are such words)
                out[key] = redact(value)
        elif type(value) is int or type(value) is float:
            if not -_SMALL < value < _SMALL:
                return None
        elif value is not None and type(value) is not bool:
            return None
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = _line(record)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _json(out)


def _json(out: dict[str, Any], masked: dict[str, Any] | None = None) -> str:
    """The JSON line; ``masked``: ``_masked_values(out)`` if the caller has it already."""
    masked = masked if masked is not None else _masked_values(out)
    if masked is not None:
        return _encode(masked).decode()
    return redact(_encode(out).decode())


class _Direct:
    """The webhook line written straight to the gateway's own handler, as the handler would have
    written it (the same JSON line, byte for byte: tests/unit/test_logformat.py), without a
    ``LogRecord`` and the logging machinery around it (~8% of a webhook's CPU).

    Only while that handler is the one place lines go: the logger is enabled for the level, and
    neither it nor the root logger has another handler or a filter (pytest's ``caplog``, an
    embedding application's own logging). Otherwise :func:`gateway.logs.webhook` logs as usual.
    The line is written and flushed at once, as the handler would (the webhook handler calls this
    right after its answer is sent: gateway.runtime.webhook)."""

    def __init__(self, handler: logging.StreamHandler, root: logging.Logger) -> None:  # type: ignore[type-arg]
        self.handler = handler
        self.root = root
        self._stream: object = None
        self._fd: int | None = None

    def _descriptor(self, stream: Any) -> int | None:
        """The stream's file descriptor when bytes written to it directly are what the stream
        would write (UTF-8 text, the handler's usual terminator); else None."""
        if stream is not self._stream:
            self._stream, self._fd = stream, None
            try:
                if (self.handler.terminator == "\n"
                        and codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "utf-8"):
                    self._fd = stream.fileno()
            except (AttributeError, OSError, ValueError, LookupError):  # io.UnsupportedOperation is an OSError
                self._fd = None
        return self._fd

    def __call__(self, logger: logging.Logger, level: int, fields: Mapping[str, Any]) -> bool:
        root, handler = self.root, self.handler
        if (len(root.handlers) != 1 or root.handlers[0] is not handler or root.filters or handler.filters
                or level < handler.level or not logger.isEnabledFor(level)):
            return False
        node: logging.Logger | None = logger
        while node is not root:  # the logger and its parents up to the root: nothing of their own
            if node is None or node.handlers or node.filters or not node.propagate:
                return False
            node = node.parent
        out = _head_and(time.time(), logging.getLevelName(level), _pid, logger.name, fields)
        masked = _masked_values(out)
        try:
            with handler.lock:  # type: ignore[union-attr]
                stream = handler.stream
                fd = self._descriptor(stream)
                if fd is None or masked is None:
                    stream.write(_json(out, masked) + handler.terminator)
                    stream.flush()
                else:  # the same bytes, without encoding the line twice and a second flush
                    stream.flush()  # anything another writer left in the stream's buffer goes first
                    line = memoryview(_encode(masked) + b"\n")
                    while line:
                        line = line[os.write(fd, line):]
        except Exception:  # noqa: BLE001 - a full disk, a closed stream: logging's own handling, never the webhook's
            return False  # the caller logs through `logging`, whose handler reports the failure and goes on
        return True


_pid = os.getpid()  # what LogRecord.process would say (os.getpid() is a system call each time)


def _new_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_new_pid)


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
    logs.write_directly(_Direct(handler, root) if fmt == "json" else None)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        # uvicorn turns its access lines off (without --access-log) by stopping their propagation:
        # that choice stays, or every request would log an access line (~5% of a webhook's CPU).
        if name != "uvicorn.access":
            logger.propagate = True
    # What the lines never show is not collected per record (the logging documentation's
    # "Optimization" switches): the caller's file and line, the thread, the multiprocessing name.
    # A record cost about as much as formatting it (docs/performance.md).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False


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
