"""State every simulator shares: the call log, the fault queue, stored idempotent responses, one lock.

A simulator subclasses :class:`SimCore`, seeds its cards in :meth:`SimCore.seed`, and says how its
cards look and are added through ``/_sim/cards`` (:attr:`SimCore.card_schema`,
:meth:`SimCore.card_views`, :meth:`SimCore.put_card_from`).

Everything here is synchronous on purpose: callers hold ``SimCore.lock`` around a whole
read-check-write sequence, and without awaits inside, no other request can interleave with it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import msgspec

FaultMode = Literal["delay", "status", "garbage"]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    """One queued fault; ``remaining`` counts the API requests it still applies to."""

    mode: FaultMode
    remaining: int
    seconds: float = 0.0
    status: int = 0

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mode": self.mode, "remaining": self.remaining}
        if self.mode == "delay":
            data["seconds"] = self.seconds
        elif self.mode == "status":
            data["status"] = self.status
        return data


@dataclass(frozen=True)
class StoredResponse:
    """What an idempotency key was first used for, and the exact response it was answered with."""

    method: str
    path: str
    body: Any  # the request body as a JSON value: key order and whitespace do not matter
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def same_request(self, method: str, path: str, body: Any) -> bool:
        return (self.method, self.path, self.body) == (method, path, body)


class IdempotencyKeyReused(Exception):
    """The key was first used for another request (method, path or body differ)."""


class SimCore:
    """Base class of a simulator's in-memory state."""

    #: msgspec Struct that ``POST /_sim/cards`` decodes (strictly) into before :meth:`put_card_from`.
    card_schema: ClassVar[type[msgspec.Struct]]

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the start: seed cards, empty call log, no faults, no idempotency keys."""
        self.calls: list[dict[str, Any]] = []
        self.faults: deque[Fault] = deque()
        self.idempotency: dict[str, StoredResponse] = {}
        self.seed()

    # --- to override -------------------------------------------------------------------------

    def seed(self) -> None:
        """(Re)create the seed cards and any other provider state."""
        raise NotImplementedError

    def card_views(self) -> list[dict[str, Any]]:
        """Every card as ``GET /_sim/cards`` lists it (secrets included: it is a test control)."""
        raise NotImplementedError

    def put_card_from(self, body: Any) -> dict[str, Any]:
        """Add or replace a card from a decoded :attr:`card_schema`; return its ``/_sim`` view."""
        raise NotImplementedError

    # --- shared --------------------------------------------------------------------------------

    def stored_response(self, key: str, method: str, path: str, body: Any) -> StoredResponse | None:
        """The response stored for ``key``, None if the key is new; raises :class:`IdempotencyKeyReused`."""
        stored = self.idempotency.get(key)
        if stored is not None and not stored.same_request(method, path, body):
            raise IdempotencyKeyReused(key)
        return stored

    def take_fault(self) -> Fault | None:
        """Uses up one ``times`` of the oldest queued fault, if any."""
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self.faults.popleft()
        return fault
