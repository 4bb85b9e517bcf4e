"""``python -m simulators.voucherify [--host H] [--port P] [--app-id-file PATH] [--app-token-file PATH]
[--token-lifetime SECONDS]``"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litestar import Litestar

from simulators.simkit import CliError, run_cli

from . import DEFAULT_APP_ID_FILE, DEFAULT_APP_TOKEN_FILE, DEFAULT_PORT, read_app_id, read_app_token
from .app import create_app
from .state import DEFAULT_TOKEN_LIFETIME


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-id-file", type=Path, default=DEFAULT_APP_ID_FILE, help="file holding the X-App-Id")
    parser.add_argument(
        "--app-token-file", type=Path, default=DEFAULT_APP_TOKEN_FILE, help="file holding the X-App-Token"
    )
    parser.add_argument(
        "--token-lifetime",
        type=int,
        default=DEFAULT_TOKEN_LIFETIME,
        metavar="SECONDS",
        help=f"lifetime of OAuth tokens from POST /v1/oauth/token (default {DEFAULT_TOKEN_LIFETIME})",
    )


def _build(args: argparse.Namespace) -> Litestar:
    try:
        app_id = read_app_id(args.app_id_file)
        app_token = read_app_token(args.app_token_file)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read credentials: {exc}") from None
    try:
        return create_app(app_id, app_token, token_lifetime=args.token_lifetime)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        name="voucherify",
        description="Simulator of Voucherify's Vouchers API (gift vouchers) and OAuth 2.0 tokens.",
        default_port=DEFAULT_PORT,
        add_arguments=_arguments,
        build=_build,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
