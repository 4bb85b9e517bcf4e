"""Simulator of Radial Payments' stored value (gift card) and tender type lookup XML APIs.

Run it with ``python -m simulators.radial``; embed it with
``simulators.radial.app.create_app(api_key)``. What it implements: README.md next to this file.
"""

from pathlib import Path

from simulators.simkit import read_secret

DEFAULT_KEY_FILE = Path(__file__).resolve().parent / "radial.key"
DEFAULT_PORT = 8770


def read_api_key(path: Path = DEFAULT_KEY_FILE) -> str:
    return read_secret(path, "API key")
