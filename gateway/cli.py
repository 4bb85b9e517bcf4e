"""The ``gateway`` command.

``gateway serve`` loads the configuration exactly as ``lint`` will, refuses to start on any
error (printing each at ``file:line:col``), starts the configured companion processes, then
runs the app under uvicorn.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import logs
from .diagnostics import errors
from .lint.format import FORMATS
from .load import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="Configuration-driven gateway for NewStore gift card webhooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default="gateway.yaml", help="path of gateway.yaml (default: %(default)s)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--no-companions", action="store_true", help="do not start the companions listed in gateway.yaml")
    lint = sub.add_parser("lint", help="check gateway.yaml and mappings; exit 1 on errors")
    lint.add_argument("paths", nargs="*", type=Path, help="files or folders to lint (default: --config and mappings/)")
    lint.add_argument("--config", type=Path, default=None, help="gateway.yaml to lint (default: gateway.yaml)")
    lint.add_argument("--format", choices=FORMATS, default="text", help="output format (default: %(default)s)")
    lint.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "lint":
        return _lint(args)
    return 2  # pragma: no cover - argparse enforces the choices


def _lint(args: argparse.Namespace) -> int:
    from .lint import UsageError, lint
    from .lint.format import render

    try:
        diagnostics = lint(args.paths, config=args.config)
    except UsageError as exc:
        print(f"gateway lint: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(diagnostics, args.format))
    if errors(diagnostics) or (args.strict and diagnostics):
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .companions import Companions

    logs.configure(args.log_level.upper())
    plan, diagnostics = load(args.config)
    for d in diagnostics:
        print(f"{d.severity}: {d}", file=sys.stderr)
    if plan is None or errors(diagnostics):
        print(f"gateway: {args.config} has errors; not starting", file=sys.stderr)
        return 1
    os.environ["GATEWAY_CONFIG"] = os.path.abspath(args.config)
    os.environ["GATEWAY_LOG_LEVEL"] = args.log_level.upper()
    with Companions(() if args.no_companions else plan.companions):
        uvicorn.run(
            "gateway.serve:app_from_environment",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=20,
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
