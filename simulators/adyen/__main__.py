"""``python -m simulators.adyen [--host H] [--port P] [--key-file PATH] [--merchant-account NAME]...
[--basic-auth-file PATH]``"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litestar import Litestar

from simulators.simkit import CliError, read_secret, run_cli

from . import DEFAULT_KEY_FILE, DEFAULT_PORT, read_api_key
from .app import DEFAULT_MERCHANT_ACCOUNT, create_app


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-file", type=Path, default=DEFAULT_KEY_FILE, help="file holding the X-API-Key value")
    parser.add_argument(
        "--merchant-account",
        action="append",
        dest="merchant_accounts",
        metavar="NAME",
        help=f"a merchant account requests may name (repeatable; default {DEFAULT_MERCHANT_ACCOUNT})",
    )
    parser.add_argument(
        "--basic-auth-file",
        type=Path,
        help="file holding USERNAME:PASSWORD also accepted as HTTP Basic (default: Basic auth refused)",
    )


def _build(args: argparse.Namespace) -> Litestar:
    try:
        api_key = read_api_key(args.key_file)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read API key: {exc}") from None
    basic_auth = None
    if args.basic_auth_file is not None:
        try:
            username, sep, password = read_secret(args.basic_auth_file, "Basic auth").partition(":")
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read Basic auth credentials: {exc}") from None
        if not (sep and username and password):
            raise CliError("the Basic auth file must hold USERNAME:PASSWORD")
        basic_auth = (username, password)
    return create_app(
        api_key, merchant_accounts=args.merchant_accounts or (DEFAULT_MERCHANT_ACCOUNT,), basic_auth=basic_auth
    )


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        name="adyen",
        description="Simulator of Adyen's Stored Value API v46.",
        default_port=DEFAULT_PORT,
        add_arguments=_arguments,
        build=_build,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
