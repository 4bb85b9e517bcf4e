"""What the request path uses, built once from the plan: upstream clients and the idempotency
store, opened together and closed together (``async with running(plan) as rt``)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

from ..observe import metrics
from ..plan import GatewayPlan
from .idempotency import Idempotency, start_idempotency
from .upstream.breaker import Breaker, GuardedUpstream
from .upstream.client import TransportFactory, Upstream


@dataclass
class Runtime:
    plan: GatewayPlan
    # A provider with a circuit breaker (the default) is reached through it.
    upstreams: dict[str, Upstream | GuardedUpstream] = field(default_factory=dict)
    idempotency: Idempotency | None = None

    def breakers(self) -> dict[str, Breaker]:
        """Each provider's circuit breaker, by route name (for /readyz and metrics):
        ``breaker.state`` is ``closed``, ``open`` or ``half_open``."""
        return {name: u.breaker for name, u in self.upstreams.items() if isinstance(u, GuardedUpstream)}


@asynccontextmanager
async def running(plan: GatewayPlan, transport_factory: TransportFactory | None = None) -> AsyncIterator[Runtime]:
    """Open a client per provider and the idempotency store (and its purge task); close all on exit.

    ``transport_factory`` is the network seam: tests give a provider an in-process or faulty
    transport; by default each provider gets httpx's."""
    rt = Runtime(plan)
    for name, provider in plan.providers.items():
        upstream = Upstream(provider, transport_factory(provider) if transport_factory else None)
        if provider.breaker is None:
            rt.upstreams[name] = upstream
            continue
        breaker = Breaker(name, provider.breaker)
        breaker.subscribe(metrics.set_breaker_state)  # the gauge, and /readyz's details
        metrics.set_breaker_state(name, breaker.state)
        rt.upstreams[name] = GuardedUpstream(upstream, breaker)
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
