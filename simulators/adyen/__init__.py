"""Simulator of Adyen's Stored Value API v46 (gift cards: Givex, SVS, Fiserv ValueLink).

Run it with ``python -m simulators.adyen``; embed it with
``simulators.adyen.app.create_app(api_key)``. What it implements: README.md next to this file.
"""

from pathlib import Path

from simulators.simkit import read_secret

DEFAULT_KEY_FILE = Path(__file__).resolve().parent / "adyen.key"
DEFAULT_PORT = 8766


def read_api_key(path: Path = DEFAULT_KEY_FILE) -> str:
    return read_secret(path, "API key")
