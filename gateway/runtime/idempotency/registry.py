"""The idempotency stores, registered by URL scheme: the one place to add a store.

Adding a store is one module beside this one, exposing ``from_url(url, base_dir, *,
max_connections, wait) -> Store`` (``store.Store`` says what it must guarantee), and one
``StoreKind`` line below. The driver is imported only when a store of that kind is opened, so
this module stays cheap to import: ``compile`` reads it to check ``idempotency.store`` in lint.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class StoreKind:
    name: str
    schemes: tuple[str, ...]
    module: str  # relative to this package; imported on first open
    shared: bool  # several gateway instances can share it (then the keys must be configured)
    example: str


KINDS = (
    StoreKind("sqlite", ("sqlite",), ".sqlite_store", shared=False, example="sqlite:///path"),
    StoreKind("redis", ("redis", "rediss", "unix"), ".redis_store", shared=True, example="redis://host:port/db"),
    StoreKind("postgresql", ("postgresql", "postgres"), ".postgres_store", shared=True, example="postgresql://user@host/db"),
)
_BY_SCHEME = {scheme: kind for kind in KINDS for scheme in kind.schemes}


class UnknownStore(ValueError):
    pass


def kind_of(url: str) -> StoreKind:
    """The kind a store URL names; ``UnknownStore`` says what is accepted."""
    scheme, sep, rest = url.partition("://")
    kind = _BY_SCHEME.get(scheme.lower()) if sep else None
    if kind is None or (kind.name == "sqlite" and not rest.startswith("/")):
        known = ", ".join(k.example for k in KINDS)
        raise UnknownStore(f"`{url.split(':', 1)[0]}:` is not a store this gateway knows; use {known}"
                           if kind is None else "a SQLite store URL is sqlite:///relative/path or sqlite:////absolute/path")
    return kind


def sqlite_path(url: str, base_dir: Path) -> Path:
    """The database file of a ``sqlite:///…`` URL: relative to gateway.yaml's folder unless absolute."""
    path = Path(url.partition(":///")[2])
    return path if path.is_absolute() else base_dir / path


def open_store(url: str, base_dir: Path, *, max_connections: int = 10, wait: float = 30.0) -> Store:
    """A store for ``url``, not yet opened (``await store.open()``).

    Redis and PostgreSQL keep up to ``max_connections`` connections; an operation that finds
    them all busy waits for one, at most ``wait`` seconds (a claim, less: its webhook's deadline
    bounds it). SQLite has one connection per process, on its own thread."""
    module = importlib.import_module(kind_of(url).module, __package__)
    return module.from_url(url, base_dir, max_connections=max_connections, wait=wait)
