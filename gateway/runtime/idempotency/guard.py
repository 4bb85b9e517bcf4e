"""The idempotency rule for one webhook: the first request with a key runs, later ones replay.

::

    claim(key) -> acquired: run, then store the answer if it is definitive, else release the key
               -> done:     replay the stored status and body, byte for byte
               -> busy:     wait (polling, bounded by the webhook's deadline): replay its answer
                            if it stored one, else answer 503 request_in_progress (never run
                            the provider call a second time while the first may still be going)

Every claim, including its wait for a free store connection under a burst, is bounded by the
webhook's deadline: a store that cannot answer in time gets 503 idempotency_unavailable (nothing
was sent to the provider), or request_in_progress if a duplicate was already holding the key.

Only definitive answers are stored (successes and the provider's rejections). Unknown outcomes
(timeouts, 5xx, unreachable) release the key so NewStore's retry runs again; a mapping passes
NewStore's key on to providers that support idempotency, so that retry cannot issue twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from ... import logs
from ...errors import InProgress, StoreUnavailable
from ...observe import metrics
from .crypto import Sealer, SealError
from .store import ClaimKind, Record, Store, StoreError

logger = logging.getLogger("gateway.runtime.idempotency")

# A waiter takes its last look at the store this long before its deadline, so that look still
# has time to answer.
_LAST_LOOK = 0.05


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    definitive: bool


class Idempotency:
    def __init__(self, store: Store, sealer: Sealer, *, lease: float, retention: float, kind: str = "store") -> None:
        self.store = store
        self.kind = kind  # the store's kind (sqlite, redis, postgresql): a metrics label
        self.sealer = sealer
        self.lease = lease
        self.retention = retention
        self._background: set[asyncio.Task[None]] = set()

    async def run(self, provider: str, operation: str, key: str, request: bytes, deadline_at: float,
                  execute: Callable[[], Awaitable[Answer]]) -> tuple[Answer, bool]:
        """Run ``execute`` at most once per key; returns the answer and whether it was replayed."""
        storage_key = hashlib.sha256(f"{provider}\0{operation}\0{key}".encode()).hexdigest()
        token = secrets.token_hex(16)
        delay = 0.01
        waited = False
        while True:
            kind, record = await self._claim(storage_key, token, deadline_at, waited)
            if kind == "done":
                assert record is not None
                return self._replay(storage_key, record, request, provider, operation), True
            if kind == "acquired":
                if waited:
                    # The request we waited for ended without a definitive answer (or its
                    # process died): the provider may still be working on it. Do not repeat
                    # the call now; NewStore's next retry runs it.
                    await self._release(storage_key, token)
                    raise InProgress("the earlier request with this idempotence_key ended without a definitive "
                                     "answer; retry later", request_accepted=True)
                break
            if not waited:
                metrics.idempotency_waited(self.kind)
            waited = True
            remaining = deadline_at - time.monotonic() - _LAST_LOOK
            if remaining <= 0:
                raise _still_in_progress()
            await asyncio.sleep(min(delay, remaining))  # then one last look just before the deadline
            delay = min(delay * 1.5, 0.25)

        try:
            answer = await execute()
        except BaseException:
            await self._release(storage_key, token)
            raise
        if not answer.definitive:
            await self._release(storage_key, token)
            return answer, False
        key_id, sealed = self.sealer.seal(storage_key, answer.body)
        record = Record(answer.status, self.sealer.fingerprint(request), key_id, sealed)
        try:
            if not await self.store.complete(storage_key, token, record, self.retention):
                logger.warning("idempotency: the key's lease ran out before the answer was stored")
        except StoreError as exc:
            metrics.store_error(self.kind, "complete")
            # The provider has acted: answer anyway. A retry runs again, and the provider-side
            # key (if the mapping sends one) keeps it from acting twice.
            logger.error("idempotency: could not store the answer: %s", exc)
        return answer, False

    async def _claim(self, storage_key: str, token: str, deadline_at: float,
                     waited: bool) -> tuple[ClaimKind, Record | None]:
        """One claim, bounded by the webhook's deadline, waiting for a store connection included."""
        try:
            async with asyncio.timeout(max(0.0, deadline_at - time.monotonic())):
                return await self.store.claim(storage_key, token, self.lease)
        except TimeoutError:
            # The claim may have reached the store before it was cut off: free the key if it
            # is ours (token-checked, so a no-op otherwise), without holding up the answer.
            task = asyncio.get_running_loop().create_task(self._release(storage_key, token))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            if waited:
                raise _still_in_progress() from None
            metrics.store_error(self.kind, "claim")
            logger.error("idempotency store unavailable: no answer (or no free connection) before the "
                         "webhook's deadline")
            raise StoreUnavailable("the idempotency store did not answer within the webhook's deadline; "
                                   "nothing was sent to the provider") from None
        except StoreError as exc:
            metrics.store_error(self.kind, "claim")
            logger.error("idempotency store unavailable: %s", exc)
            raise StoreUnavailable("the idempotency store is unavailable; nothing was sent to the provider") from None

    def _replay(self, storage_key: str, record: Record, request: bytes, provider: str, operation: str) -> Answer:
        try:
            body = self.sealer.open(record.key_id, storage_key, record.sealed)
        except SealError as exc:
            logger.error("idempotency: %s", exc)
            # A record exists, so the provider did act: never tell NewStore nothing happened.
            raise StoreUnavailable("the stored response for this idempotence_key cannot be read "
                                   "(is every instance configured with the key that sealed it?)",
                                   request_accepted=True) from None
        if record.fingerprint and record.fingerprint != self.sealer.fingerprint(request, record.key_id):
            # Fingerprints (HMACs), never the bodies; the operation without the instrument id
            # the key is scoped to.
            logs.event(logger, logging.WARNING, "idempotency_body_mismatch", provider=provider,
                       operation=operation.split("\0", 1)[0], stored=record.fingerprint,
                       received=self.sealer.fingerprint(request, record.key_id))
        return Answer(record.status, body, True)

    async def _release(self, storage_key: str, token: str) -> None:
        try:
            await asyncio.shield(self.store.release(storage_key, token))
        except StoreError as exc:
            metrics.store_error(self.kind, "release")
            logger.error("idempotency: could not release a key (it frees itself when its lease ends): %s", exc)


def _still_in_progress() -> InProgress:
    return InProgress("a request with the same idempotence_key is still in progress; retry later",
                      request_accepted=True)
