"""What the request path uses, built once from the plan: upstream clients and the idempotency
store, opened together and closed together (``async with running(plan) as rt``).

A reload builds a new :class:`Runtime` beside the running one (:func:`open_runtime` with
``reuse``: the store is kept when its settings did not change, a provider's circuit breaker when
its base URL and breaker settings did not) and closes the old one once no request uses it any
more (:mod:`gateway.runtime.live`)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

from ..observe import metrics
from ..plan import GatewayPlan, ProviderPlan
from .idempotency import Idempotency, start_idempotency
from .upstream.breaker import Breaker, GuardedUpstream
from .upstream.client import TransportFactory, Upstream


@dataclass(eq=False)
class Runtime:
    plan: GatewayPlan
    # A provider with a circuit breaker (the default) is reached through it.
    upstreams: dict[str, Upstream | GuardedUpstream] = field(default_factory=dict)
    idempotency: Idempotency | None = None
    # The store's purge task; None when this Runtime does not own the store (handed on by a reload).
    purge: asyncio.Task[None] | None = field(default=None, repr=False)
    owns_store: bool = field(default=False, repr=False)
    # The event loop it was opened on, which serves its requests (its clients and store belong to
    # that loop already): handed to what needs the loop's clock or task on the hot path, since
    # asyncio.get_running_loop() is a getpid() system call each time (8 per webhook before).
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def breakers(self) -> dict[str, Breaker]:
        """Each provider's circuit breaker, by route name (for /readyz and metrics):
        ``breaker.state`` is ``closed``, ``open`` or ``half_open``."""
        return {name: u.breaker for name, u in self.upstreams.items() if isinstance(u, GuardedUpstream)}


async def open_runtime(plan: GatewayPlan, transport_factory: TransportFactory | None = None,
                       reuse: Runtime | None = None) -> Runtime:
    """Open a client per provider, and the idempotency store unless ``reuse`` has one with the
    same settings (then the store, its purge task and the duty to close it move to the new one).
    Raises the store's error (``StoreError``) with nothing left open.

    A reload keeps a provider's circuit breaker (its state and its count) when the provider still
    calls the same ``base_url`` with the same breaker settings: adding a tenant must not make
    every webhook of a provider that is down wait for its timeout again. A provider whose
    ``base_url`` or breaker settings changed starts closed: its failures were another host's."""
    rt = Runtime(plan, loop=asyncio.get_running_loop())
    if plan.idempotency is not None:
        if reuse is not None and reuse.owns_store and reuse.plan.idempotency == plan.idempotency:
            rt.idempotency, rt.purge, rt.owns_store = reuse.idempotency, reuse.purge, True
            reuse.purge, reuse.owns_store = None, False
        else:
            rt.idempotency, rt.purge = await start_idempotency(plan.idempotency)
            rt.owns_store = True
    for name, provider in plan.providers.items():
        upstream = Upstream(provider, transport_factory(provider) if transport_factory else None)
        if provider.breaker is None:
            rt.upstreams[name] = upstream
            continue
        breaker = _kept_breaker(reuse, name, provider)
        if breaker is None:
            breaker = Breaker(name, provider.breaker)
            breaker.subscribe(metrics.set_breaker_state)  # the gauge follows every change
        metrics.set_breaker_state(name, breaker.state)
        rt.upstreams[name] = GuardedUpstream(upstream, breaker)
    return rt


def _kept_breaker(reuse: Runtime | None, name: str, provider: ProviderPlan) -> Breaker | None:
    """The running breaker of ``name`` if a reload may keep it (same base URL, same settings):
    the old and the new Runtime then share it while requests of both run."""
    old = reuse.upstreams.get(name) if reuse is not None else None
    if (isinstance(old, GuardedUpstream) and old.breaker.plan == provider.breaker
            and old.upstream.provider.base_url == provider.base_url):
        return old.breaker
    return None


async def close_runtime(rt: Runtime) -> None:
    """Close the upstream clients, and the store if this Runtime still owns it."""
    if rt.purge is not None:
        rt.purge.cancel()
        rt.purge = None
    await asyncio.gather(*(u.aclose() for u in rt.upstreams.values()))
    rt.upstreams.clear()
    if rt.idempotency is not None and rt.owns_store:
        await rt.idempotency.store.close()
    rt.idempotency, rt.owns_store = None, False


@asynccontextmanager
async def running(plan: GatewayPlan, transport_factory: TransportFactory | None = None) -> AsyncIterator[Runtime]:
    """Open a client per provider and the idempotency store (and its purge task); close all on exit.

    ``transport_factory`` is the network seam: tests give a provider an in-process or faulty
    transport; by default each provider gets the gateway's own."""
    rt = await open_runtime(plan, transport_factory)
    try:
        yield rt
    finally:
        await close_runtime(rt)
