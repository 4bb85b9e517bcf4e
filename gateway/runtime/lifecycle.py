"""What the request path uses, built once from the plan: upstream clients and the idempotency
store, opened together and closed together (``async with running(plan) as rt``)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

from ..plan import GatewayPlan
from .idempotency import Idempotency, start_idempotency
from .upstream.client import TransportFactory, Upstream


@dataclass
class Runtime:
    plan: GatewayPlan
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    idempotency: Idempotency | None = None


@asynccontextmanager
async def running(plan: GatewayPlan, transport_factory: TransportFactory | None = None) -> AsyncIterator[Runtime]:
    """Open a client per provider and the idempotency store (and its purge task); close all on exit.

    ``transport_factory`` is the network seam: tests give a provider an in-process or faulty
    transport; by default each provider gets httpx's."""
    rt = Runtime(plan)
    for name, provider in plan.providers.items():
        rt.upstreams[name] = Upstream(provider, transport_factory(provider) if transport_factory else None)
    purge: asyncio.Task[None] | None = None
    try:
        if plan.idempotency is not None:
            rt.idempotency, purge = await start_idempotency(plan.idempotency)
        yield rt
    finally:
        if purge is not None:
            purge.cancel()
        await asyncio.gather(*(u.aclose() for u in rt.upstreams.values()))
        rt.upstreams.clear()
        if rt.idempotency is not None:
            await rt.idempotency.store.close()
            rt.idempotency = None
