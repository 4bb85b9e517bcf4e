"""The idempotency stores are registered by URL scheme in one place (runtime/idempotency/registry.py)."""

from pathlib import Path

import pytest

from gateway.runtime.idempotency import registry
from gateway.runtime.idempotency.postgres_store import PostgresStore
from gateway.runtime.idempotency.redis_store import RedisStore
from gateway.runtime.idempotency.sqlite_store import SQLiteStore

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("url", "kind", "shared"), [
    ("sqlite:///.gateway/idempotency.sqlite3", "sqlite", False),
    ("sqlite:////var/lib/gateway/db.sqlite3", "sqlite", False),
    ("redis://127.0.0.1:6379/0", "redis", True),
    ("rediss://cache.internal:6380/1", "redis", True),
    ("unix:///run/redis.sock", "redis", True),
    ("postgresql://gateway@db/gateway", "postgresql", True),
    ("postgres://gateway@db/gateway", "postgresql", True),
])
def test_each_scheme_names_its_kind(url, kind, shared):
    assert registry.kind_of(url).name == kind
    assert registry.kind_of(url).shared is shared


@pytest.mark.parametrize("url", ["mysql://db/x", "memcached://x", "redis", "", "file:///tmp/x"])
def test_an_unknown_scheme_lists_what_is_known(url):
    with pytest.raises(registry.UnknownStore) as caught:
        registry.kind_of(url)
    assert "is not a store this gateway knows" in str(caught.value)
    for kind in registry.KINDS:
        assert kind.example in str(caught.value)


def test_a_sqlite_url_needs_a_path():
    with pytest.raises(registry.UnknownStore, match="sqlite:///relative/path or sqlite:////absolute/path"):
        registry.kind_of("sqlite://relative.db")


def test_a_sqlite_path_is_relative_to_the_config_unless_absolute(tmp_path):
    assert registry.sqlite_path("sqlite:///state/db.sqlite3", tmp_path) == tmp_path / "state" / "db.sqlite3"
    assert registry.sqlite_path("sqlite:////srv/db.sqlite3", tmp_path) == Path("/srv/db.sqlite3")


@pytest.mark.parametrize(("url", "cls"), [
    ("sqlite:///db.sqlite3", SQLiteStore),
    ("redis://127.0.0.1:1/0", RedisStore),
    ("postgresql://nobody@127.0.0.1:1/none", PostgresStore),
])
def test_open_store_builds_the_registered_class_without_connecting(url, cls, tmp_path):
    assert isinstance(registry.open_store(url, tmp_path), cls)
