"""Command line entry point: ``python -m examples.sandbox [--host H] [--port P] [--key-file PATH]``."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

import uvicorn

from . import DEFAULT_HOST, DEFAULT_KEY_FILE, DEFAULT_PORT, read_api_key
from .app import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.sandbox", description="Sandbox gift card provider.")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port (printed on start)")
    parser.add_argument("--key-file", type=Path, default=DEFAULT_KEY_FILE, help="file holding the API key")
    args = parser.parse_args(argv)

    try:
        api_key = read_api_key(args.key_file)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read API key: {exc}")

    # Binding here rather than in uvicorn lets us report the real port when --port 0 was asked for.
    family = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.create_server((args.host, args.port), family=family)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    print(f"sandbox provider listening on http://{shown_host}:{port}", flush=True)

    # No access log: card numbers are part of URL paths and must never be printed.
    config = uvicorn.Config(create_app(api_key), access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
