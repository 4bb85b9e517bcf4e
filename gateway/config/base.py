"""What every config type shares: the Struct base and secret references.

Kept apart from ``model`` so the auth kinds (``gateway.auth``), which ``model`` composes into
a mapping file, can declare their own config types without an import cycle.
"""

from __future__ import annotations

import msgspec


class Base(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Config types: unknown fields are errors, values are immutable once loaded."""


class SecretRef(Base):
    """Where a secret's value lives: ``{env: NAME}`` or ``{file: path}``, never the value itself."""

    env: str | None = None
    file: str | None = None
