"""SQLite store: the embedded default, safe across worker processes on one machine.

WAL journal; every claim in a ``BEGIN IMMEDIATE`` transaction, so two processes can never both
acquire a key; completed records written with ``synchronous=FULL``, so a stored response
survives a power cut. Claims and releases are written with ``synchronous=NORMAL`` (atomic and
immediately visible to every process, fsynced at the next checkpoint): a claim lost in a power
cut is the same as a claim whose lease ran out, since the request holding it died with the
machine, so making it durable would buy nothing and cost one fsync per webhook. Completions
that arrive while one is being written are written together, in one transaction and one fsync
(group commit), and each waits for its own result. sqlite3 is blocking: each process runs its
connection on one dedicated thread.
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


def from_url(url: str, base_dir: Path, *, max_connections: int, wait: float) -> "SQLiteStore":
    """``sqlite:///relative/path`` (relative to gateway.yaml's folder) or ``sqlite:////absolute/path``;
    one connection per process, so ``max_connections`` and ``wait`` do not apply."""
    from .registry import sqlite_path

    return SQLiteStore(sqlite_path(url, base_dir))


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idempotency-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[tuple[str, str, Record, float], asyncio.Future[bool]]] = []
        self._writing = False

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
        conn.execute("PRAGMA synchronous=NORMAL")
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
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(((key, token, record, retention), future))
        if not self._writing:
            self._writing = True
            asyncio.get_running_loop().create_task(self._write_pending())
        return await future

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._run(self._complete_many, [item for item, _ in batch])
                except StoreError as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results):
                        if not future.done():
                            future.set_result(result)
        finally:
            self._writing = False

    def _complete_many(self, items: list[tuple[str, str, Record, float]]) -> list[bool]:
        conn = self._db()
        conn.execute("PRAGMA synchronous=FULL")
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [
                conn.execute(
                    "UPDATE idempotency SET state = 'done', expires_at = ?, status = ?, fingerprint = ?, key_id = ?, "
                    "body = ? WHERE key = ? AND token = ? AND state = 'pending'",
                    (now + retention, record.status, record.fingerprint, record.key_id, record.sealed, key, token),
                ).rowcount == 1
                for key, token, record, retention in items
            ]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    async def release(self, key: str, token: str) -> None:
        await self._run(self._release, key, token)

    def _release(self, key: str, token: str) -> None:
        self._db().execute("PRAGMA synchronous=NORMAL")
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

    async def ping(self) -> None:
        # Through the store's one thread, so a ping also notices a thread stuck behind a lock.
        await self._run(lambda: self._db().execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("SQLite store is not open")
        return self._conn
