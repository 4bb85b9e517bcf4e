"""The three idempotency stores as test fixtures, against the real services of this machine.

Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, database `test`) are used as they run
here. Where they are not running, their tests skip with a reason that says how to run them;
`.ci/run` sets GATEWAY_REQUIRE_SERVICES=1, which turns such a skip into a failure.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from pathlib import Path

import pytest

REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TEST_KEY = base64.b64encode(bytes(range(32))).decode()  # a fixed test key, never a real one


def _reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def require(kind: str) -> None:
    """Skip (or, under CI, fail) when the service behind ``kind`` is not running."""
    port = {"redis": 6379, "postgres": 5432}.get(kind)
    if port is None or _reachable(port):
        return
    message = (f"{kind} is not running on 127.0.0.1:{port}; start it (or run `bash .ci/run`, which does) "
               f"to test the {kind} idempotency store")
    if os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def store_url(kind: str, tmp_path: Path) -> str:
    require(kind)
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'idempotency.sqlite3'}"
    if kind == "redis":
        _flush_redis()
        return REDIS_URL
    _drop_postgres_table()
    return POSTGRES_URL


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter("gateway:idempotency:*"):
        client.delete(key)
    client.close()


def _drop_postgres_table() -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute("DROP TABLE IF EXISTS gateway_idempotency")
        finally:
            await conn.close()

    asyncio.run(drop())


def raw_contents(kind: str, url: str) -> bytes:
    """Everything the store holds, as raw bytes, to search for card data in clear."""
    if kind == "sqlite":
        path = Path(url[len("sqlite:///"):])
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(url)
        try:
            return b"\n".join(k + b"=" + (client.get(k) or b"") for k in client.scan_iter("gateway:idempotency:*"))
        finally:
            client.close()
    import asyncpg

    async def dump() -> bytes:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT * FROM gateway_idempotency")
        finally:
            await conn.close()
        return b"\n".join(repr(tuple(r.values())).encode() for r in rows)

    return asyncio.run(dump())


KINDS = ["sqlite", "redis", "postgres"]
