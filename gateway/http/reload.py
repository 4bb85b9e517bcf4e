"""Reloading gateway.yaml and its mappings in place, on SIGHUP, in every worker.

Each worker process recompiles the configuration itself (on a thread, so it keeps serving) and,
if it loads without errors, swaps in a new Runtime (:class:`~gateway.runtime.live.Live`):
requests in flight finish on the plan they started with; the old upstream clients close after
them; the idempotency store is kept unless its settings changed. A configuration with errors
changes nothing: its diagnostics are logged one line each at ``file:line:col`` and the running
plan keeps serving.

Who receives SIGHUP: with one worker, ``gateway serve``'s own process is the server. With
several, it is uvicorn's supervisor, which would *restart* its workers (new processes reading
the file, a traceback and a dead worker for a broken file): :func:`forward_sighup_to_workers`
makes it pass the signal on instead, so every worker reloads in place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from contextlib import asynccontextmanager
from typing import AsyncIterator

from ..compile.gateway_file import load
from ..diagnostics import errors
from ..runtime.idempotency import StoreError
from ..runtime.live import Live
from ..runtime.upstream.client import TransportFactory
from .startup import describe_store_failure

log = logging.getLogger("gateway.reload")
_pending = False  # a SIGHUP arrived before the server could reload: reload once it can


def _remember(_signum: int, _frame: object) -> None:
    global _pending
    _pending = True


def defer_sighup() -> None:
    """Until the app is up, a SIGHUP is remembered rather than fatal (its default action)."""
    signal.signal(signal.SIGHUP, _remember)


@asynccontextmanager
async def reloads_on_sighup(live: Live, config: str, transport_factory: TransportFactory | None = None
                            ) -> AsyncIterator[None]:
    global _pending
    reloader = Reloader(live, config, transport_factory)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, reloader.request)
    if _pending:
        _pending = False
        reloader.request()
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        defer_sighup()
        await reloader.cancel()


class Reloader:
    def __init__(self, live: Live, config: str, transport_factory: TransportFactory | None) -> None:
        self.live, self.config, self.transport_factory = live, config, transport_factory
        self.task: asyncio.Task[None] | None = None
        self.again = False

    def request(self) -> None:
        """SIGHUP: reload now, or once more after the reload under way (signals coalesce)."""
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = asyncio.create_task(self._run())

    async def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self.again = False
            try:
                await self.reload()
            except Exception as exc:  # noqa: BLE001 - a reload must never take the server down
                log.error("reload of %s failed (%s: %s); still serving the previous configuration",
                          self.config, type(exc).__name__, exc)
            if not self.again:
                return

    async def reload(self) -> bool:
        log.info("SIGHUP: reloading %s (pid %d)", self.config, os.getpid())
        plan, diagnostics = await asyncio.to_thread(load, self.config)
        problems = errors(diagnostics)
        if plan is None or problems:
            for d in problems:
                log.error("reload: %s", d)
            log.error("reload of %s refused: %d error(s) above; still serving the previous configuration",
                      self.config, len(problems))
            return False
        for d in diagnostics:
            log.warning("reload: %s", d)
        old = self.live.current
        try:
            await self.live.replace(plan, self.transport_factory)
        except StoreError as exc:
            log.error("reload of %s refused: %s; still serving the previous configuration", self.config,
                      describe_store_failure(plan.idempotency, exc) if plan.idempotency else exc)
            return False
        before = set(old.plan.providers) if old is not None else set()
        added, removed = sorted(set(plan.providers) - before), sorted(before - set(plan.providers))
        change = "".join([f"; added {', '.join(added)}" if added else "",
                          f"; removed {', '.join(removed)}" if removed else ""])
        log.info("reloaded %s (pid %d): %d providers%s", self.config, os.getpid(), len(plan.providers), change)
        if old is not None:
            for what in _restart_only(old.plan, plan):
                log.warning("reload: %s changed; that takes effect only when gateway serve restarts", what)
        return True


def _restart_only(old, new) -> list[str]:  # type: ignore[no-untyped-def]
    """Settings a running server cannot change in place."""
    out = []
    if old.max_body_bytes != new.max_body_bytes:
        out.append("max_body_bytes")  # Litestar's request size limit is fixed when the app is built
    if old.companions != new.companions:
        out.append("companions")  # started once, by the gateway serve process
    if getattr(old, "drain_timeout", None) != getattr(new, "drain_timeout", None):
        out.append("drain_timeout")  # uvicorn's graceful shutdown is set at start
    return out


def forward_sighup_to_workers() -> None:
    """Make uvicorn's supervisor pass SIGHUP on to its workers instead of restarting them.

    uvicorn (0.54) dispatches the signals its supervisor receives to ``handle_<name>`` methods of
    ``Multiprocess``; ``handle_hup`` restarts every worker. tests/test_dependencies.py pins that
    seam; tests/test_reload.py proves the result with two workers."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    def handle_hup(self: Multiprocess) -> None:
        pids = [p.pid for p in self.processes if p.pid is not None and p.exitcode is None]
        log.info("SIGHUP: asking %d worker(s) to reload in place", len(pids))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:  # died meanwhile; its replacement reads the file anyway
                pass

    Multiprocess.handle_hup = handle_hup  # type: ignore[method-assign]
