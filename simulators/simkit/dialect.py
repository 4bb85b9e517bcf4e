"""How a simulated provider words its protocol-level errors, and what it checks before routing.

:class:`Dialect` itself speaks the kit's neutral format, ``{"error": {"code", "message"}}``,
which the ``/_sim`` control routes always use (and the sandbox provider uses everywhere). A
provider simulator subclasses it and overrides each method with its provider's error shape.
"""

from __future__ import annotations

import msgspec

from .gate import ApiRequest, Reply

# Status -> (code, fixed message or None to use the exception's detail), for errors raised by the
# router or by Litestar itself (unknown path, wrong method, body over the limit, bad path params).
NEUTRAL_HTTP_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request", None),
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "method not allowed for this endpoint"),
    413: ("payload_too_large", None),
}


def neutral_body(code: str, message: str) -> bytes:
    return msgspec.json.encode({"error": {"code": code, "message": message}})


def neutral_reply(status: int, code: str, message: str) -> Reply:
    return Reply(status, neutral_body(code, message))


class SimError(Exception):
    """An error in the kit's neutral format; never stored for idempotent replay."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def reply(self) -> Reply:
        return neutral_reply(self.status, self.code, self.message)


class ReplyError(Exception):
    """Raise from a route handler to answer with a ready-made (provider-shaped) reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"HTTP {reply.status}")
        self.reply = reply


class Dialect:
    """Defaults: the neutral format, no authentication."""

    def check(self, request: ApiRequest) -> Reply | None:
        """Runs before routing, after faults: authentication, required headers. None lets it through."""
        return None

    def fault(self, status: int) -> Reply:
        """The answer of a queued ``status`` fault (429 should be the provider's rate-limit error)."""
        code = "rate_limited" if status == 429 else "simulated_fault"
        return neutral_reply(status, code, f"simulated fault (HTTP {status})")

    def too_large(self, limit: int) -> Reply:
        return neutral_reply(413, "payload_too_large", f"body exceeds {limit} bytes")

    def http_error(self, status: int, detail: str) -> Reply:
        """Errors from the router or Litestar: 404 unknown path, 405 wrong method (OPTIONS too), 400, 413."""
        code, message = NEUTRAL_HTTP_ERRORS.get(status, ("http_error", None))
        return neutral_reply(status, code, message or detail)

    def internal_error(self) -> Reply:
        return neutral_reply(500, "internal_error", "internal error")
