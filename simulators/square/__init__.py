"""Simulator of Square's Gift Cards and Gift Card Activities APIs.

Run it with ``python -m simulators.square``; embed it with
``simulators.square.app.create_app(access_token)``. What it implements: README.md next to
this file.
"""

from pathlib import Path

from simulators.simkit import read_secret

DEFAULT_TOKEN_FILE = Path(__file__).resolve().parent / "square.token"
DEFAULT_PORT = 8767


def read_access_token(path: Path = DEFAULT_TOKEN_FILE) -> str:
    return read_secret(path, "access token")
