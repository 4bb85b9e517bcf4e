"""Simulator of Shopify's Admin GraphQL API for gift cards, and its client credentials grant.

Run it with ``python -m simulators.shopify``; embed it with
``simulators.shopify.app.create_app(admin_token, client_id=..., client_secret=...)``. What it
implements: README.md next to this file.
"""

from pathlib import Path

from simulators.simkit import read_secret

HERE = Path(__file__).resolve().parent
DEFAULT_TOKEN_FILE = HERE / "shopify.token"
DEFAULT_CLIENT_ID_FILE = HERE / "shopify.client_id"
DEFAULT_CLIENT_SECRET_FILE = HERE / "shopify.client_secret"
DEFAULT_PORT = 8769


def read_token(path: Path = DEFAULT_TOKEN_FILE) -> str:
    return read_secret(path, "access token")


def read_client_id(path: Path = DEFAULT_CLIENT_ID_FILE) -> str:
    return read_secret(path, "client ID")


def read_client_secret(path: Path = DEFAULT_CLIENT_SECRET_FILE) -> str:
    return read_secret(path, "client secret")
