"""Simulator of Voucherify's Vouchers API (gift vouchers) and its OAuth 2.0 token endpoint.

Run it with ``python -m simulators.voucherify``; embed it with
``simulators.voucherify.app.create_app(app_id, app_token)``. What it implements:
README.md next to this file.
"""

from pathlib import Path

from simulators.simkit import read_secret

HERE = Path(__file__).resolve().parent
DEFAULT_APP_ID_FILE = HERE / "voucherify.app_id"
DEFAULT_APP_TOKEN_FILE = HERE / "voucherify.app_token"
DEFAULT_PORT = 8768


def read_app_id(path: Path = DEFAULT_APP_ID_FILE) -> str:
    return read_secret(path, "application ID")


def read_app_token(path: Path = DEFAULT_APP_TOKEN_FILE) -> str:
    return read_secret(path, "secret key")
