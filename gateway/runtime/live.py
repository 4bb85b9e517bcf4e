"""The :class:`Runtime` requests use now, replaced whole by a reload.

Each request takes the current Runtime once (:meth:`Live.enter`) and keeps it to the end
(:meth:`Live.leave`), so a request that started before a reload finishes on the plan, clients
and store it started with, and one that starts after sees only the new ones: never half of
each. A replaced Runtime is closed once its last request has left. Everything runs on one
event loop, so the counts need no lock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from ..plan import GatewayPlan
from .lifecycle import Runtime, close_runtime, open_runtime
from .upstream.client import TransportFactory

log = logging.getLogger("gateway.runtime.live")


class Live:
    def __init__(self) -> None:
        self.current: Runtime | None = None
        self._users: dict[int, int] = {}  # id(Runtime) -> requests using it
        self._drained: dict[int, asyncio.Event] = {}  # replaced Runtimes still in use
        self._retiring: set[asyncio.Task[None]] = set()
        # Called once a replaced Runtime is closed (gateway serve: heap.settle, see http/app.py).
        self.after_retire: Callable[[], None] | None = None

    def enter(self) -> Runtime:
        rt = self.current
        assert rt is not None, "the app is not started"
        self._users[id(rt)] = self._users.get(id(rt), 0) + 1
        return rt

    def leave(self, rt: Runtime) -> None:
        left = self._users[id(rt)] - 1
        if left:
            self._users[id(rt)] = left
            return
        del self._users[id(rt)]
        drained = self._drained.get(id(rt))
        if drained is not None:
            drained.set()

    async def start(self, plan: GatewayPlan, transport_factory: TransportFactory | None = None) -> Runtime:
        self.current = await open_runtime(plan, transport_factory)
        return self.current

    async def replace(self, plan: GatewayPlan, transport_factory: TransportFactory | None = None) -> Runtime:
        """Serve ``plan`` from now on; the old Runtime closes when its requests have finished.

        If the new store cannot be opened this raises (``StoreError``) and the old plan keeps serving."""
        old = self.current
        new = await open_runtime(plan, transport_factory, reuse=old)
        self.current = new
        if old is not None:
            task = asyncio.create_task(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return new

    async def _retire(self, rt: Runtime) -> None:
        drained = self._drained[id(rt)] = asyncio.Event()
        if id(rt) not in self._users:
            drained.set()
        try:
            await drained.wait()
        finally:
            del self._drained[id(rt)]
            await close_runtime(rt)
            if self.after_retire is not None:
                self.after_retire()

    @property
    def draining(self) -> int:
        """Replaced Runtimes still waiting for their requests."""
        return len(self._retiring)

    async def stop(self) -> None:
        """At shutdown (the server has already waited for requests in flight): close everything."""
        for task in list(self._retiring):
            task.cancel()  # its `finally` closes the Runtime
        await asyncio.gather(*self._retiring, return_exceptions=True)
        if self.current is not None:
            await close_runtime(self.current)
            self.current = None
