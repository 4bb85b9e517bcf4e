"""Sandbox: a stateful simulator of a fictional gift card provider, used as a realistic upstream.

Run it with ``python -m simulators.sandbox``; embed it with ``simulators.sandbox.app.create_app(api_key)``.
The API is described in README.md next to this file.
"""

from pathlib import Path

from simulators.simkit import read_secret

DEFAULT_KEY_FILE = Path(__file__).resolve().parent / "sandbox.key"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def read_api_key(path: Path = DEFAULT_KEY_FILE) -> str:
    return read_secret(path, "API key")
