"""Redis store: for several gateway instances behind a load balancer.

A pending claim is ``SET key <pending> NX PX <lease>``: atomic, and Redis itself drops it when
the lease runs out (a crashed holder frees the key). Completion and release are Lua scripts
that act only if the caller's token still holds the key. Done records carry a TTL of the
retention period, so Redis purges them itself.

Connections come from a bounded pool (``max_connections`` per process) that *waits* for a free
connection when all are busy: redis-py's default pool raises instead, so a burst of more
concurrent webhooks than connections failed. A claim's wait is bounded by its webhook's deadline
(see ``guard``); completions and releases wait at most ``wait`` seconds.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .store import ClaimKind, Record, StoreError

_PREFIX = "gateway:idempotency:"

_COMPLETE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local record = cjson.decode(current)
if record['state'] ~= 'pending' or record['token'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

_RELEASE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local record = cjson.decode(current)
if record['state'] == 'pending' and record['token'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def from_url(url: str, base_dir: object, *, max_connections: int, wait: float) -> "RedisStore":
    return RedisStore(url, max_connections=max_connections, wait=wait)


class RedisStore:
    def __init__(self, url: str, *, max_connections: int = 10, wait: float = 30.0) -> None:
        self.url = url
        self.max_connections = max_connections
        self.wait = wait
        self._client: Any = None

    async def open(self) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=self.max_connections, timeout=self.wait,
            socket_timeout=5, socket_connect_timeout=5)
        self._client = aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it
        try:
            await self._client.ping()
        except RedisError as exc:
            raise StoreError(f"Redis store: {type(exc).__name__}") from exc
        self._complete = self._client.register_script(_COMPLETE)
        self._release = self._client.register_script(_RELEASE)

    async def claim(self, key: str, token: str, lease: float) -> tuple[ClaimKind, Record | None]:
        name = _PREFIX + key
        pending = json.dumps({"state": "pending", "token": token})
        try:
            for _ in range(5):  # a record may expire between SET NX and GET; try again then
                if await self._client.set(name, pending, nx=True, px=max(1, int(lease * 1000))):
                    return "acquired", None
                current = await self._client.get(name)
                if current is None:
                    continue
                record = json.loads(current)
                if record["state"] == "pending":
                    return "busy", None
                return "done", Record(record["status"], record["fingerprint"], record["key_id"],
                                      bytes.fromhex(record["body"]))
        except RedisError as exc:
            raise StoreError(f"Redis store: {type(exc).__name__}") from exc
        return "busy", None

    async def complete(self, key: str, token: str, record: Record, retention: float) -> bool:
        done = json.dumps({"state": "done", "status": record.status, "fingerprint": record.fingerprint,
                           "key_id": record.key_id, "body": record.sealed.hex()})
        try:
            return bool(await self._complete(keys=[_PREFIX + key], args=[token, done, int(retention * 1000)]))
        except RedisError as exc:
            raise StoreError(f"Redis store: {type(exc).__name__}") from exc

    async def release(self, key: str, token: str) -> None:
        try:
            await self._release(keys=[_PREFIX + key], args=[token])
        except RedisError as exc:
            raise StoreError(f"Redis store: {type(exc).__name__}") from exc

    async def purge(self) -> int:
        return 0  # every record carries a TTL: Redis expires them itself

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except RedisError as exc:
            raise StoreError(f"Redis store: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
