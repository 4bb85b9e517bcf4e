"""Sandbox: a stateful simulator of a fictional gift card provider, used as a realistic upstream.

Run it with ``python -m examples.sandbox``; embed it with ``examples.sandbox.app.create_app(api_key)``.
The API is described in README.md next to this file.
"""

from pathlib import Path

DEFAULT_KEY_FILE = Path(__file__).resolve().parent / "sandbox.key"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def read_api_key(path: Path = DEFAULT_KEY_FILE) -> str:
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(f"API key file {path} is empty")
    return key
