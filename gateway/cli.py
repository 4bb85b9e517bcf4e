"""The ``gateway`` command.

``gateway serve`` loads the configuration exactly as ``lint`` will, refuses to start on any
error (printing each at ``file:line:col``), starts the configured companion processes, then
runs the app under uvicorn.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import cli_env
from . import diagnostics as rules
from .compile.gateway_file import load
from .contracts import OPERATIONS
from .diagnostics import errors
from .http.pidfile import DEFAULT_NAME as DEFAULT_PID_FILE
from .tools.lint.format import FORMATS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="Configuration-driven gateway for NewStore gift card webhooks.")
    parser.add_argument("--version", action="version", version=f"gateway {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default="gateway.yaml", help="path of gateway.yaml (default: %(default)s)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default="json", choices=["json", "text"],
                       help="json: one JSON object per line (default); text: one readable line per event, for development")
    serve.add_argument("--access-log", action="store_true",
                       help="also log one `access` line per HTTP request (the webhook line already says more)")
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
    serve.add_argument("--drain-delay", type=_drain_seconds, default=0.0, metavar="SECONDS",
                       help="after SIGTERM, answer /readyz 503 and keep serving this long before shutting down, "
                            "so a load balancer stops sending first (default: %(default)g)")
    serve.add_argument("--no-metrics", action="store_true", help="record no metrics and serve no /metrics")
    serve.add_argument("--limit-concurrency", type=_positive, default=None, metavar="N",
                       help="per worker: past N open connections or requests, answer 503 (default: no limit)")
    serve.add_argument("--drain-timeout", type=_seconds, default=None, metavar="SECONDS",
                       help="on SIGTERM, requests in flight get this long to finish; at least the longest "
                            "webhook deadline (default: gateway.yaml's drain_timeout, else that deadline + 5)")
    serve.add_argument("--pid-file", type=Path, default=None, metavar="PATH",
                       help=f"where to write the server's pid, for `gateway reload` (default: {DEFAULT_PID_FILE} "
                            "next to gateway.yaml)")
    reload = sub.add_parser("reload", help="reload the running gateway serve's configuration in place (SIGHUP)")
    reload.add_argument("--config", default="gateway.yaml", help="path of gateway.yaml (default: %(default)s)")
    reload.add_argument("--pid-file", type=Path, default=None, metavar="PATH",
                        help=f"gateway serve's pid file (default: {DEFAULT_PID_FILE} next to gateway.yaml)")
    for flagged in (serve, reload):
        cli_env.apply(flagged)  # GATEWAY_<FLAG> environment variables as defaults
    lint = sub.add_parser("lint", help="check gateway.yaml and mappings; exit 1 on errors")
    lint.add_argument("paths", nargs="*", type=Path, help="files or folders to lint (default: --config and mappings/)")
    lint.add_argument("--config", type=Path, default=None, help="gateway.yaml to lint (default: gateway.yaml)")
    lint.add_argument("--format", choices=FORMATS, default="text", help="output format (default: %(default)s)")
    lint.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    lint.add_argument("--online", action="store_true",
                      help="also open the idempotency store once, as serve will: a warning if it does not answer")
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
    if args.command == "reload":
        from .http.pidfile import default_path, send_reload

        status, message = send_reload(args.pid_file or default_path(args.config))
        print(f"gateway reload: {message}", file=sys.stderr if status else sys.stdout)
        return status
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
        diagnostics = lint(args.paths, config=args.config, online=args.online)
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

    from .http import pidfile, reload, startup
    from .http.companions import CompanionFailed, Companions
    from .http.serve import APP_ENVIRONMENT, FRONT_ENVIRONMENT, HttpFront, use_loaded
    from .observe import logformat, tracing
    from .observe.multiproc import metrics_directory

    logformat.configure(args.log_level.upper(), args.log_format)
    # What `serve` says goes through the log format too (each diagnostic's text as `lint` prints it).
    say = logging.getLogger("gateway.serve")
    # One worker runs in this process and serves this plan; several load it each (http/serve.py),
    # so here it is only checked: lint's mode, the same checks without generating template code.
    plan, diagnostics = load(args.config, eager=args.workers == 1, keep=args.workers == 1)
    for d in diagnostics:
        say.log(logging.ERROR if d.severity == "error" else logging.WARNING, "%s: %s", d.severity, d)
    if plan is None or errors(diagnostics):
        say.error("gateway: %s has errors; not starting", args.config)
        return 1
    trace_problem = tracing.problem()
    if trace_problem is not None:
        say.error("gateway: %s; not starting", trace_problem)
        return 1
    drain_timeout = args.drain_timeout or plan.drain_timeout
    if drain_timeout < plan.longest_deadline:
        return startup.fail(f"--drain-timeout {drain_timeout:g} is shorter than the longest webhook deadline "
                            f"({plan.longest_deadline:g}s in {args.config}): stopping would cut off webhooks "
                            "still within their deadline; give at least that")
    if problem := startup.check_port(args.host, args.port):
        return startup.fail(problem)
    reload.defer_sighup()  # until the server runs, a SIGHUP waits rather than kills
    if args.workers > 1:
        reload.forward_sighup_to_workers()
    os.environ["GATEWAY_CONFIG"] = os.path.abspath(args.config)
    os.environ["GATEWAY_LOG_LEVEL"] = args.log_level.upper()
    os.environ["GATEWAY_LOG_FORMAT"] = args.log_format
    os.environ[FRONT_ENVIRONMENT["body_timeout"]] = repr(args.body_timeout)
    os.environ[FRONT_ENVIRONMENT["header_timeout"]] = repr(args.header_timeout)
    os.environ[APP_ENVIRONMENT["drain_delay"]] = repr(args.drain_delay)
    os.environ[APP_ENVIRONMENT["metrics"]] = "off" if args.no_metrics else "on"
    if args.workers == 1:
        use_loaded(plan)
    # SIGTERM (and SIGINT) become an exception, so the `with` below always stops the companions.
    # uvicorn installs its own handlers while it serves, shuts down gracefully on the first
    # signal, then restores these and raises the signal again: it lands here, after the shutdown.
    # (Left at SIG_DFL, that re-raised SIGTERM killed the process before `__exit__` could run.)
    previous = {sig: signal.signal(sig, _stop_by_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pidfile.written(args.pid_file or pidfile.default_path(args.config)), \
                Companions(() if args.no_companions else plan.companions), \
                metrics_directory(args.workers > 1 and not args.no_metrics):
            if problem := startup.check_store(plan.idempotency):  # after companions: one may be the store
                return startup.fail(problem)
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
                log_config=logformat.uvicorn_config(args.log_level, args.log_format),  # its lines as ours
                log_level=args.log_level,
                access_log=args.access_log,
                lifespan="on",
                timeout_graceful_shutdown=drain_timeout,
            )
    except CompanionFailed as exc:
        return startup.fail(str(exc))
    except KeyboardInterrupt:  # SIGINT or SIGTERM outside uvicorn's own handling: stopped
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newstore-giftcard-gateway")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout that was never installed
        return "unknown (not installed)"


def _stop_by_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1: {text!r}")
    return int(text)


def _drain_seconds(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else _seconds(text)


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
