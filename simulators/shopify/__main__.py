"""``python -m simulators.shopify [--host H] [--port P] [--token-file PATH] [--client-id-file PATH]
[--client-secret-file PATH] [--api-version V]... [--currency C] [--scope S]... [--token-lifetime SECONDS]
[--max-initial-value DECIMAL] [--throttle-status 200|429]``"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from litestar import Litestar

from simulators.simkit import CliError, run_cli

from . import (
    DEFAULT_CLIENT_ID_FILE,
    DEFAULT_CLIENT_SECRET_FILE,
    DEFAULT_PORT,
    DEFAULT_TOKEN_FILE,
    read_client_id,
    read_client_secret,
    read_token,
)
from .app import DEFAULT_API_VERSIONS, DEFAULT_MAX_INITIAL_VALUE, create_app
from .state import DEFAULT_SCOPES, DEFAULT_TOKEN_LIFETIME


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-file", type=Path, default=DEFAULT_TOKEN_FILE,
                        help="file holding a static X-Shopify-Access-Token")
    parser.add_argument("--client-id-file", type=Path, default=DEFAULT_CLIENT_ID_FILE,
                        help="file holding the app's client ID (client credentials grant)")
    parser.add_argument("--client-secret-file", type=Path, default=DEFAULT_CLIENT_SECRET_FILE,
                        help="file holding the app's client secret")
    parser.add_argument("--api-version", action="append", dest="api_versions", metavar="YYYY-MM",
                        help=f"an accepted API version (repeatable; default {', '.join(DEFAULT_API_VERSIONS)})")
    parser.add_argument("--currency", default="USD", help="the shop's currency (default USD)")
    parser.add_argument("--scope", action="append", dest="scopes", metavar="SCOPE",
                        help=f"an access scope every token has (repeatable; default {', '.join(DEFAULT_SCOPES)})")
    parser.add_argument("--token-lifetime", type=int, default=DEFAULT_TOKEN_LIFETIME, metavar="SECONDS",
                        help=f"lifetime of client credentials tokens (default {DEFAULT_TOKEN_LIFETIME})")
    parser.add_argument("--max-initial-value", default=str(DEFAULT_MAX_INITIAL_VALUE), metavar="DECIMAL",
                        help="largest initialValue giftCardCreate accepts (default %(default)s)")
    parser.add_argument("--throttle-status", type=int, choices=(200, 429), default=200,
                        help="HTTP status of the THROTTLED answer to a queued 429 fault (default 200)")


def _build(args: argparse.Namespace) -> Litestar:
    try:
        token = read_token(args.token_file)
        client_id = read_client_id(args.client_id_file)
        client_secret = read_client_secret(args.client_secret_file)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read credentials: {exc}") from None
    try:
        max_initial = Decimal(args.max_initial_value)
    except InvalidOperation:
        raise CliError("--max-initial-value must be a decimal number") from None
    try:
        return create_app(
            token,
            client_id=client_id,
            client_secret=client_secret,
            api_versions=args.api_versions or DEFAULT_API_VERSIONS,
            currency=args.currency,
            scopes=args.scopes or DEFAULT_SCOPES,
            token_lifetime=args.token_lifetime,
            max_initial_value=max_initial,
            throttle_status=args.throttle_status,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        name="shopify",
        description="Simulator of Shopify's Admin GraphQL API for gift cards.",
        default_port=DEFAULT_PORT,
        add_arguments=_arguments,
        build=_build,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
