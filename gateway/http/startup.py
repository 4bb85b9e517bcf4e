"""Startup failures of ``gateway serve`` as one line each, naming what failed and what to do.

A failure before the port is bound (port taken, idempotency store unreachable, companion
failed, config invalid) is found by ``gateway serve`` itself, before uvicorn starts, and ends
it with status 1. One that happens later in a worker (the store going away between that check
and the worker's start) passes through the app's lifespan, where Litestar would hand uvicorn the
whole traceback as the message to log: :func:`one_line_startup_failures` replaces it with
the same single line.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..plan import GatewayPlan, IdempotencyPlan
from ..runtime.idempotency import StoreError, open_store

_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "postgresql": 5432, "postgres": 5432}


def fail(message: str) -> int:
    """Log ``message`` as gateway serve's one line about why it stops (in the log format chosen,
    like every other line); the exit status."""
    logging.getLogger("gateway.serve").error("gateway: %s", message)
    return 1


def mask_url(url: str) -> str:
    """``redis://:pw@host:6379/0`` -> ``redis://:***@host:6379/0``: a store URL may carry a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def store_address(url: str) -> str:
    """``host:port`` of a Redis/PostgreSQL URL, or the path of a SQLite/unix one."""
    parts = urlsplit(url)
    if parts.scheme in ("sqlite", "unix"):
        return parts.path
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:
        port = 0
    return f"{parts.hostname or 'localhost'}:{port}"


def describe_store_failure(plan: IdempotencyPlan, exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    why = f"{exc}: {cause}" if cause is not None and str(cause) else str(exc)
    password = urlsplit(plan.store_url).password
    if password:
        why = why.replace(password, "***")
    where = f" ({plan.where} idempotency.store)" if plan.where else ""
    return (f"cannot open the idempotency store {mask_url(plan.store_url)} at {store_address(plan.store_url)}{where}: "
            f"{' '.join(why.split()).rstrip('.')}; start it or make it reachable from here, or correct idempotency.store")


async def _open_and_close(plan: IdempotencyPlan) -> None:
    store = open_store(plan.store_url, Path(plan.base_dir), max_connections=1, wait=5.0)
    try:
        await store.open()
    finally:
        try:
            await store.close()
        except Exception:  # noqa: BLE001 - closing what never opened
            pass


def check_store(plan: IdempotencyPlan | None) -> str | None:
    """Open and close the store once: None if it answered, else the one line saying why not."""
    if plan is None:
        return None
    try:
        asyncio.run(_open_and_close(plan))
    except (StoreError, OSError) as exc:
        return describe_store_failure(plan, exc)
    return None


def check_port(host: str, port: int) -> str | None:
    """Bind and release ``host:port`` as uvicorn will: None if free, else the one line saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror}; correct --host (GATEWAY_HOST)"
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (f"cannot listen on {host}:{port}: the port is already in use (`ss -ltnp 'sport = :{port}'` "
                    "shows by what); stop that process or choose another --port (GATEWAY_PORT)")
        return f"cannot listen on {host}:{port}: {exc.strerror}; choose another --host or --port"
    finally:
        sock.close()
    return None


def one_line_startup_failures(app: Any, plan: GatewayPlan) -> Any:
    """Have ``app``'s lifespan report a startup failure to uvicorn as one line, not a traceback.

    Litestar sends ``lifespan.startup.failed`` with the formatted traceback as its message, which
    uvicorn logs as is. Only the lifespan entry point changes (the router becomes a subclass whose
    ``lifespan`` rewrites that message): the request path is untouched, with no wrapper per request."""
    router = app.asgi_router

    class OneLineRouter(type(router)):  # type: ignore[misc]
        __slots__ = ()

        async def lifespan(self, receive: Any, send: Any) -> None:
            async def send_one_line(message: Any) -> None:
                if message.get("type") == "lifespan.startup.failed":
                    exc = sys.exc_info()[1]  # sent from Litestar's `except` block: the failure itself
                    message = {**message, "message": describe(plan, exc)}
                await send(message)

            await super().lifespan(receive=receive, send=send_one_line)

    router.__class__ = OneLineRouter
    return app


def describe(plan: GatewayPlan, exc: BaseException | None) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # Litestar runs the lifespan in a task group
        exc = exc.exceptions[0]
    if isinstance(exc, StoreError) and plan.idempotency is not None:
        return describe_store_failure(plan.idempotency, exc)
    if exc is None:
        return "the application failed to start"
    text = " ".join(str(exc).split()) or "no message"
    return f"the application failed to start: {type(exc).__name__}: {text}"
