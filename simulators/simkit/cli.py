"""Command line entry point shared by the simulators: ``python -m simulators.<name> [--host] [--port 0] [...]``.

Prints exactly one line, ``<label> listening on http://HOST:PORT``, then nothing but warnings:
uvicorn runs without access log (card numbers can be part of URL paths) at log level warning.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Callable

import uvicorn
from litestar.types import ASGIApp

DEFAULT_HOST = "127.0.0.1"


class CliError(Exception):
    """Raised by a simulator's ``build`` for a bad option; reported like an argparse error (exit 2)."""


def read_secret(path: Path, what: str = "API key") -> str:
    """The stripped content of a file holding a credential; an empty file is an error."""
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        raise ValueError(f"{what} file {path} is empty")
    return secret


def serve(app: ASGIApp, host: str, port: int, label: str) -> int:
    # Binding here rather than in uvicorn lets us report the real port when --port 0 was asked for.
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.create_server((host, port), family=family)
    bound_host, bound_port = sock.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"{label} listening on http://{shown_host}:{bound_port}", flush=True)

    # No access log: card numbers are part of some URL paths and must never be printed.
    config = uvicorn.Config(app, access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def run_cli(
    *,
    name: str,
    build: Callable[[argparse.Namespace], ASGIApp],
    default_port: int,
    description: str | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    label: str | None = None,
    prog: str | None = None,
    argv: list[str] | None = None,
) -> int:
    """Parse ``--host``/``--port`` (plus ``add_arguments``), build the app, serve it.

    ``build`` gets the parsed arguments and returns the ASGI app; it raises :class:`CliError` for a
    bad option. ``label`` defaults to ``"<name> simulator"``.
    """
    parser = argparse.ArgumentParser(prog=prog or f"python -m simulators.{name}", description=description)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free port (printed on start)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        app = build(args)
    except CliError as exc:
        parser.error(str(exc))
    return serve(app, args.host, args.port, label or f"{name} simulator")
