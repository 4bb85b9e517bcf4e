"""The idempotency store interface, shared by the SQLite, Redis and PostgreSQL stores.

A store keeps one record per key: *pending* while a request holds the key (with a lease, so a
crashed holder frees it when the lease runs out) and *done* with the sealed response once the
request has a definitive outcome (kept for the retention period). The three operations are
atomic in every store:

- ``claim(key, token, lease)``: take a free, expired or abandoned key -> ``("acquired", None)``;
  a done key -> ``("done", record)``; a key another request holds -> ``("busy", None)``.
- ``complete(key, token, record, retention)``: pending -> done, only for the token that holds it.
- ``release(key, token)``: forget a pending key (unknown outcome: the next retry runs again).

Stores only ever see hashed keys, HMAC fingerprints and sealed (encrypted) bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

ClaimKind = Literal["acquired", "done", "busy"]
StoreKind = Literal["sqlite", "redis", "postgres"]

_SCHEMES: tuple[tuple[str, StoreKind], ...] = (
    ("sqlite:///", "sqlite"), ("redis://", "redis"), ("rediss://", "redis"), ("unix://", "redis"),
    ("postgresql://", "postgres"), ("postgres://", "postgres"),
)


def store_kind(url: str) -> StoreKind | None:
    """Which store ``idempotency.store`` names: ``sqlite:///…``, ``redis://``/``rediss://``/``unix://…``
    or ``postgresql://``/``postgres://…``; None for anything else."""
    return next((kind for prefix, kind in _SCHEMES if url.startswith(prefix)), None)


def sqlite_path(url: str, base_dir: Path) -> Path:
    """The file of a ``sqlite:///relative/path`` (relative to ``base_dir``, gateway.yaml's folder)
    or ``sqlite:////absolute/path`` store."""
    path = Path(url[len("sqlite:///"):])
    return path if path.is_absolute() else base_dir / path


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

    async def close(self) -> None: ...


class StoreError(Exception):
    """The store could not be reached or answered in an unexpected way."""
