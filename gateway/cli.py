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

from . import diagnostics as rules
from . import logs
from .compile.gateway_file import load
from .contracts import OPERATIONS
from .diagnostics import errors
from .tools.lint.format import FORMATS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="Configuration-driven gateway for NewStore gift card webhooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default="gateway.yaml", help="path of gateway.yaml (default: %(default)s)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"],
                       help="event loop of every worker; uvloop is measured faster (docs/performance.md) "
                            "(default: %(default)s)")
    serve.add_argument("--no-companions", action="store_true", help="do not start the companions listed in gateway.yaml")
    serve.add_argument("--body-timeout", type=_seconds, default=10.0, metavar="SECONDS",
                       help="a request body must arrive within this, else 408 request_timeout and the "
                            "connection is closed (default: %(default)g)")
    serve.add_argument("--header-timeout", type=_seconds, default=10.0, metavar="SECONDS",
                       help="a request line and headers must arrive within this after the connection opens "
                            "or the request starts, else the connection is closed (default: %(default)g)")
    serve.add_argument("--keep-alive-timeout", type=_seconds, default=5.0, metavar="SECONDS",
                       help="an idle keep-alive connection is closed after this (default: %(default)g)")
    serve.add_argument("--limit-concurrency", type=_positive, default=None, metavar="N",
                       help="per worker: past N open connections or requests, answer 503 (default: no limit)")
    lint = sub.add_parser("lint", help="check gateway.yaml and mappings; exit 1 on errors")
    lint.add_argument("paths", nargs="*", type=Path, help="files or folders to lint (default: --config and mappings/)")
    lint.add_argument("--config", type=Path, default=None, help="gateway.yaml to lint (default: gateway.yaml)")
    lint.add_argument("--format", choices=FORMATS, default="text", help="output format (default: %(default)s)")
    lint.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    test = sub.add_parser("test", help="run mapping test cases offline (exit codes as pytest's)")
    test.add_argument("paths", nargs="*", type=Path, help="*.test.yaml files or folders (default: mappings/)")
    render = sub.add_parser("render", help="show the requests a webhook would send (secrets and PINs masked)")
    render.add_argument("provider")
    render.add_argument("operation", choices=list(OPERATIONS))
    render.add_argument("request", nargs="?", help="NewStore request body: a JSON file, or - for stdin "
                                                  "(default: NewStore's example for the operation)")
    render.add_argument("--config", default="gateway.yaml", help="path of gateway.yaml (default: %(default)s)")
    render.add_argument("--send", action="store_true", help="call the provider and print the trace")
    schema = sub.add_parser("schema", help="print the JSON Schema of mapping files or of gateway.yaml")
    schema.add_argument("kind", nargs="?", choices=["mapping", "gateway"], default="mapping")
    new = sub.add_parser("new", help="scaffold mappings/PROVIDER.yaml and its test cases")
    new.add_argument("provider")
    new.add_argument("--dir", type=Path, default=Path("mappings"), help="where to write (default: %(default)s)")
    init = sub.add_parser("init", help="write the shipped defaults (gateway.yaml, the sandbox's mapping and key) into DIR")
    init.add_argument("dir", nargs="?", type=Path, default=Path("."), help="where to write (default: the current folder)")
    args = parser.parse_args(argv)
    if args.command == "schema":
        from .tools.schema import text

        sys.stdout.write(text(args.kind))
        return 0
    if args.command == "new":
        from .tools.scaffold import ScaffoldError
        from .tools.scaffold import new as scaffold

        try:
            for path in scaffold(args.provider, args.dir):
                print(f"wrote {path}")
        except ScaffoldError as exc:
            print(f"gateway new: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "init":
        from .tools.starter import main as init_project

        return init_project(args.dir)
    if args.command == "render":
        return _render(args)
    if args.command == "test":
        from .tools.mapping_tests import main as run_tests

        return run_tests(args.paths)
    if args.command == "serve":
        return _serve(args)
    if args.command == "lint":
        return _lint(args)
    return 2  # pragma: no cover - argparse enforces the choices


def _render(args: argparse.Namespace) -> int:
    from .tools.render import RenderUsageError, render

    plan, diagnostics = load(args.config, require_secrets=args.send, eager=True)
    for d in diagnostics:
        if d.severity == "error" or d.code == rules.SECRET_UNSET.code:
            print(f"{d.severity}: {d}", file=sys.stderr)
    if plan is None:
        return 1
    try:
        body = None
        if args.request == "-":
            body = sys.stdin.buffer.read()
        elif args.request:
            body = Path(args.request).read_bytes()
        return render(plan, args.provider, args.operation, body, send=args.send)
    except (RenderUsageError, OSError) as exc:
        print(f"gateway render: {exc}", file=sys.stderr)
        return 2


def _lint(args: argparse.Namespace) -> int:
    from .tools.lint import UsageError, lint
    from .tools.lint.format import render

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
    import signal

    import uvicorn

    from .http.companions import CompanionFailed, Companions
    from .http.serve import FRONT_ENVIRONMENT, HttpFront, use_loaded

    logs.configure(args.log_level.upper())
    # One worker runs in this process and serves this plan; several load it each (http/serve.py),
    # so here it is only checked: lint's mode, the same checks without generating template code.
    plan, diagnostics = load(args.config, eager=args.workers == 1)
    for d in diagnostics:
        print(f"{d.severity}: {d}", file=sys.stderr)
    if plan is None or errors(diagnostics):
        print(f"gateway: {args.config} has errors; not starting", file=sys.stderr)
        return 1
    os.environ["GATEWAY_CONFIG"] = os.path.abspath(args.config)
    os.environ["GATEWAY_LOG_LEVEL"] = args.log_level.upper()
    os.environ[FRONT_ENVIRONMENT["body_timeout"]] = repr(args.body_timeout)
    os.environ[FRONT_ENVIRONMENT["header_timeout"]] = repr(args.header_timeout)
    if args.workers == 1:
        use_loaded(plan)
    # SIGTERM (and SIGINT) become an exception, so the `with` below always stops the companions.
    # uvicorn installs its own handlers while it serves, shuts down gracefully on the first
    # signal, then restores these and raises the signal again: it lands here, after the shutdown.
    # (Left at SIG_DFL, that re-raised SIGTERM killed the process before `__exit__` could run.)
    previous = {sig: signal.signal(sig, _stop_by_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with Companions(() if args.no_companions else plan.companions):
            uvicorn.run(
                "gateway.http.serve:app_from_environment",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                loop=args.loop,
                http=HttpFront,  # httptools, with the gateway's limits and Error bodies: see serve.py
                timeout_keep_alive=args.keep_alive_timeout,
                limit_concurrency=args.limit_concurrency,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=20,
            )
    except CompanionFailed as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # SIGINT or SIGTERM outside uvicorn's own handling: stopped
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _stop_by_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600 seconds: {text!r}")
    return value

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
