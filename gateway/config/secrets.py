"""Secrets are values you cannot print.

A :class:`Secret` is resolved once at load time from an environment variable or a file and
handed only to the code that must send it (upstream auth, inbound key check). Its ``repr`` and
``str`` are ``***``, so a secret that slips into a log line, an exception or a dry-run trace
shows as stars. Templates never see secrets or the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import SecretRef


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SecretUnavailable(Exception):
    """Raised with a message that names where the secret should be, never its value."""


def resolve(ref: SecretRef, base_dir: Path) -> Secret:
    if (ref.env is None) == (ref.file is None):
        raise SecretUnavailable("a secret reference needs exactly one of `env` or `file`")
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None or value.strip() == "":
            raise SecretUnavailable(f"environment variable `{ref.env}` is not set")
        return _checked(value.strip(), f"environment variable `{ref.env}`")
    path = Path(ref.file)  # type: ignore[arg-type]
    if not path.is_absolute():
        path = base_dir / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretUnavailable(f"secret file `{ref.file}` cannot be read ({exc.strerror})") from None
    if not value:
        raise SecretUnavailable(f"secret file `{ref.file}` is empty")
    return _checked(value, f"secret file `{ref.file}`")


def _checked(value: str, origin: str) -> Secret:
    """Secrets travel in HTTP headers: no control characters, nothing httpx cannot encode.

    Surrounding whitespace (the trailing newline of a mounted file or `echo`) is dropped.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise SecretUnavailable(f"{origin} contains control characters (a line break inside?)")
    if not value.isascii():
        raise SecretUnavailable(f"{origin} contains non-ASCII characters, which cannot be sent in a header")
    return Secret(value)
