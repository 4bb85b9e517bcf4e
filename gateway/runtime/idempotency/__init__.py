"""Idempotency: the same response for the same ``idempotence_key``, across retries, concurrent
duplicates, crashes and several gateway instances. See ``guard`` for the rule and ``store`` for
what each store guarantees."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ...observe import metrics
from ...plan import IdempotencyPlan
from .crypto import Sealer, decode_key, load_or_create_key_file
from .guard import Answer, Idempotency
from .registry import kind_of, open_store
from .store import Record, Store, StoreError


async def start_idempotency(plan: IdempotencyPlan) -> tuple[Idempotency, asyncio.Task[None]]:
    """Open the store and the keys, and start purging expired records in the background."""
    # A completion or release waits for a connection at most one lease: past it, the key is
    # no longer ours anyway. Claims wait less: their webhook's deadline bounds them (guard.py).
    store = open_store(plan.store_url, Path(plan.base_dir), max_connections=plan.max_connections, wait=plan.lease)
    await store.open()
    if plan.keys:
        keys = [(key_id, decode_key(secret.reveal())) for key_id, secret in plan.keys]
    else:
        assert plan.key_file is not None
        keys = [("local", load_or_create_key_file(Path(plan.key_file)))]
    kind = kind_of(plan.store_url).name
    guard = Idempotency(store, Sealer(keys), lease=plan.lease, retention=plan.retention, kind=kind)
    return guard, asyncio.create_task(_purge_forever(store, min(plan.retention / 10, 600.0), kind))


async def _purge_forever(store: Store, interval: float, kind: str) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await store.purge()
            if removed:
                logging.getLogger("gateway.runtime.idempotency").info("purged %d expired records", removed)
        except StoreError as exc:
            metrics.store_error(kind, "purge")
            logging.getLogger("gateway.runtime.idempotency").error("purge failed: %s", exc)


__all__ = ["start_idempotency", "Answer", "Idempotency", "Record", "Sealer", "Store", "StoreError",
           "decode_key", "load_or_create_key_file", "open_store"]
