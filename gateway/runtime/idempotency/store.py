"""The idempotency store interface, shared by the SQLite, Redis and PostgreSQL stores.

A store keeps one record per key: *pending* while a request holds the key (with a lease, so a
crashed holder frees it when the lease runs out) and *done* with the sealed response once the
request has a definitive outcome (kept for the retention period). The three operations are
atomic in every store:

- ``claim(key, token, lease)``: take a free, expired or abandoned key -> ``("acquired", None)``;
  a done key -> ``("done", record)``; a key another request holds -> ``("busy", None)``.
- ``complete(key, token, record, retention)``: pending -> done, only for the token that holds it.
- ``release(key, token)``: forget a pending key (unknown outcome: the next retry runs again).

``ping()`` is the readiness check (``/readyz``): one cheap round trip that raises
:class:`StoreError` if the store cannot be reached; it reads and writes no record.

Stores only ever see hashed keys, HMAC fingerprints and sealed (encrypted) bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ClaimKind = Literal["acquired", "done", "busy"]


@dataclass(frozen=True)
class Record:
    status: int
    fingerprint: str
    key_id: str
    sealed: bytes


class Store(Protocol):
    async def open(self) -> None: ...

    async def claim(self, key: str, token: str, lease: float) -> tuple[ClaimKind, Record | None]: ...

    async def complete(self, key: str, token: str, record: Record, retention: float) -> bool: ...

    async def release(self, key: str, token: str) -> None: ...

    async def purge(self) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class StoreError(Exception):
    """The store could not be reached or answered in an unexpected way."""
