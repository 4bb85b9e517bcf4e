"""PostgreSQL store: for several gateway instances behind a load balancer.

A claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that takes the key only if it is
free, its lease has run out, or its record has expired: atomic, with the database's clock for
every instance. Completion and release match the holder's token.

Connections come from an asyncpg pool of ``max_connections`` per process; a request that finds
them all busy waits for one. A claim's wait is bounded by its webhook's deadline (see
``guard``); completions and releases wait at most ``wait`` seconds.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from .store import ClaimKind, Record, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_idempotency (
    key text PRIMARY KEY,
    state text NOT NULL,
    token text NOT NULL,
    lease_until timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    status integer,
    fingerprint text,
    key_id text,
    body bytea
);
CREATE INDEX IF NOT EXISTS gateway_idempotency_expiry ON gateway_idempotency (expires_at);
"""

_CLAIM = """
INSERT INTO gateway_idempotency AS t (key, state, token, lease_until, expires_at)
VALUES ($1, 'pending', $2, now() + $3 * interval '1 second', now() + $3 * interval '1 second')
ON CONFLICT (key) DO UPDATE
   SET state = 'pending', token = EXCLUDED.token, lease_until = EXCLUDED.lease_until,
       expires_at = EXCLUDED.expires_at, status = NULL, fingerprint = NULL, key_id = NULL, body = NULL
 WHERE (t.state = 'pending' AND t.lease_until < now()) OR (t.state = 'done' AND t.expires_at < now())
RETURNING token
"""

_PURGE_BATCH = 500


def from_url(url: str, base_dir: object, *, max_connections: int, wait: float) -> "PostgresStore":
    return PostgresStore(url, max_connections=max_connections, wait=wait)


class PostgresStore:
    def __init__(self, url: str, *, max_connections: int = 10, wait: float = 30.0) -> None:
        self.url = url
        self.max_connections = max_connections
        self.wait = wait
        self._pool: Any = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.max_connections,
                                                   command_timeout=10)
            async with self._pool.acquire() as conn:
                # Several instances may start at once: serialise the schema creation.
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(7311975)")
                    await conn.execute(_SCHEMA)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}") from exc

    async def claim(self, key: str, token: str, lease: float) -> tuple[ClaimKind, Record | None]:
        try:
            async with self._pool.acquire(timeout=self.wait) as conn:
                taken = await conn.fetchval(_CLAIM, key, token, float(lease))
                if taken == token:
                    return "acquired", None
                row = await conn.fetchrow(
                    "SELECT state, status, fingerprint, key_id, body, expires_at > now() AS live "
                    "FROM gateway_idempotency WHERE key = $1", key)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}") from exc
        if row is None or row["state"] == "pending" or not row["live"]:
            return "busy", None  # taken by another request between our two statements
        return "done", Record(row["status"], row["fingerprint"], row["key_id"], bytes(row["body"]))

    async def complete(self, key: str, token: str, record: Record, retention: float) -> bool:
        try:
            async with self._pool.acquire(timeout=self.wait) as conn:
                result = await conn.execute(
                    "UPDATE gateway_idempotency SET state = 'done', expires_at = now() + $3 * interval '1 second', "
                    "status = $4, fingerprint = $5, key_id = $6, body = $7 "
                    "WHERE key = $1 AND token = $2 AND state = 'pending'",
                    key, token, float(retention), record.status, record.fingerprint, record.key_id, record.sealed)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}") from exc
        return result.endswith(" 1")

    async def release(self, key: str, token: str) -> None:
        try:
            async with self._pool.acquire(timeout=self.wait) as conn:
                await conn.execute(
                    "DELETE FROM gateway_idempotency WHERE key = $1 AND token = $2 AND state = 'pending'", key, token)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}") from exc

    async def purge(self) -> int:
        total = 0
        try:
            while True:
                result = await self._pool.execute(
                    "DELETE FROM gateway_idempotency WHERE ctid IN "
                    "(SELECT ctid FROM gateway_idempotency WHERE expires_at < now() LIMIT $1)", _PURGE_BATCH)
                removed = int(result.split()[-1])
                total += removed
                if removed < _PURGE_BATCH:
                    return total
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}") from exc

    async def ping(self) -> None:
        try:
            async with self._pool.acquire(timeout=self.wait) as conn:
                await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise StoreError(f"PostgreSQL store: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
