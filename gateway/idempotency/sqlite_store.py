"""SQLite store: the embedded default, safe across worker processes on one machine.

WAL journal, ``synchronous=FULL`` (a completed record survives a power cut), and every claim in
a ``BEGIN IMMEDIATE`` transaction, so two processes can never both acquire a key. sqlite3 is
blocking: each process runs its connection on one dedicated thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from .store import ClaimKind, Record, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    token TEXT NOT NULL,
    lease_until REAL NOT NULL,
    expires_at REAL NOT NULL,
    status INTEGER,
    fingerprint TEXT,
    key_id TEXT,
    body BLOB
);
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
"""
_PURGE_BATCH = 500


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idempotency-sqlite")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store: {type(exc).__name__}: {exc}") from exc

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(_SCHEMA)
        self._conn = conn

    async def claim(self, key: str, token: str, lease: float) -> tuple[ClaimKind, Record | None]:
        return await self._run(self._claim, key, token, lease)

    def _claim(self, key: str, token: str, lease: float) -> tuple[ClaimKind, Record | None]:
        conn = self._db()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT state, lease_until, expires_at, status, fingerprint, key_id, body FROM idempotency WHERE key = ?",
                (key,),
            ).fetchone()
            if row is not None:
                state, lease_until, expires_at, status, fingerprint, key_id, body = row
                if state == "done" and expires_at > now:
                    conn.execute("COMMIT")
                    return "done", Record(status, fingerprint, key_id, bytes(body))
                if state == "pending" and lease_until > now:
                    conn.execute("COMMIT")
                    return "busy", None
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (key, state, token, lease_until, expires_at) VALUES (?, 'pending', ?, ?, ?)",
                (key, token, now + lease, now + lease),
            )
            conn.execute("COMMIT")
            return "acquired", None
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def complete(self, key: str, token: str, record: Record, retention: float) -> bool:
        return await self._run(self._complete, key, token, record, retention)

    def _complete(self, key: str, token: str, record: Record, retention: float) -> bool:
        cursor = self._db().execute(
            "UPDATE idempotency SET state = 'done', expires_at = ?, status = ?, fingerprint = ?, key_id = ?, body = ? "
            "WHERE key = ? AND token = ? AND state = 'pending'",
            (time.time() + retention, record.status, record.fingerprint, record.key_id, record.sealed, key, token),
        )
        return cursor.rowcount == 1

    async def release(self, key: str, token: str) -> None:
        await self._run(self._release, key, token)

    def _release(self, key: str, token: str) -> None:
        self._db().execute("DELETE FROM idempotency WHERE key = ? AND token = ? AND state = 'pending'", (key, token))

    async def purge(self) -> int:
        """Delete expired records in small batches, so requests are never blocked for long."""
        total = 0
        while True:
            removed = await self._run(self._purge_batch)
            total += removed
            if removed < _PURGE_BATCH:
                return total
            await asyncio.sleep(0)

    def _purge_batch(self) -> int:
        now = time.time()
        cursor = self._db().execute(
            "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE expires_at < ? LIMIT ?)",
            (now, _PURGE_BATCH),
        )
        return cursor.rowcount

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("SQLite store is not open")
        return self._conn
