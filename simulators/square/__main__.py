"""``python -m simulators.square [--host H] [--port P] [--token-file PATH] [--square-version V]...``"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litestar import Litestar

from simulators.simkit import CliError, run_cli

from . import DEFAULT_PORT, DEFAULT_TOKEN_FILE, read_access_token
from .app import DEFAULT_SQUARE_VERSIONS, create_app


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-file", type=Path, default=DEFAULT_TOKEN_FILE, help="file holding the access token")
    parser.add_argument(
        "--square-version",
        action="append",
        dest="square_versions",
        metavar="YYYY-MM-DD",
        help=f"an accepted Square-Version (repeatable; default {', '.join(DEFAULT_SQUARE_VERSIONS)})",
    )
    parser.add_argument("--currency", default="USD", help="the seller's currency (default USD)")


def _build(args: argparse.Namespace) -> Litestar:
    try:
        token = read_access_token(args.token_file)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read access token: {exc}") from None
    try:
        return create_app(
            token, square_versions=args.square_versions or DEFAULT_SQUARE_VERSIONS, currency=args.currency
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        name="square",
        description="Simulator of Square's Gift Cards and Gift Card Activities APIs.",
        default_port=DEFAULT_PORT,
        add_arguments=_arguments,
        build=_build,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
