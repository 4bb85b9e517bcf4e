"""The operator endpoints' unit side: reserved provider names and the breaker gauge (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway import diagnostics as rules
from gateway.compile.gateway_file import RESERVED_ROUTE_NAMES, load
from gateway.http.app import create_app
from gateway.observe import metrics
from gateway.tools.scaffold import ScaffoldError, new
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]

@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(RESERVED_ROUTE_NAMES))
def test_a_provider_cannot_take_a_reserved_name(name, tmp_path):
    config = write_config(tmp_path, {name: {"mapping": str(ROOT / "mappings" / "sandbox.yaml"),
                                            "inbound": "none"}})
    plan, diagnostics = load(config, require_secrets=False)
    assert plan is None
    [diagnostic] = [d for d in diagnostics if d.severity == "error"]
    assert diagnostic.code == rules.PROVIDER_NAME.code
    assert f"provider name `{name}` is reserved: the gateway serves /{name} itself" in diagnostic.message
    with pytest.raises(ScaffoldError, match="serves /"):
        new(name, tmp_path / "mappings")


@pytest.mark.unit
def test_every_own_endpoint_is_a_reserved_name(tmp_path):
    """A route the gateway adds later cannot silently shadow a provider: its name must be reserved."""
    config = write_config(tmp_path, {"sandbox": {"mapping": str(ROOT / "mappings" / "sandbox.yaml"),
                                                 "vars": {"base_url": "http://127.0.0.1:9"},
                                                 "secrets": {"api_key": {"env": "UNSET_FOR_THIS_TEST"}},
                                                 "inbound": "none"}})
    plan, diagnostics = load(config, require_secrets=False)
    assert plan is not None, diagnostics
    app = create_app(plan)
    firsts = {route.path.split("/")[1] for route in app.routes}
    own = {segment for segment in firsts if not segment.startswith("{")}
    assert own and own <= RESERVED_ROUTE_NAMES, own - RESERVED_ROUTE_NAMES


@pytest.mark.unit
def test_breaker_state_gauge():
    metrics.set_breaker_state("sandbox", "open")
    assert REGISTRY.get_sample_value("gateway_upstream_breaker_state", {"provider": "sandbox"}) == 2
    metrics.set_breaker_state("sandbox", "half_open")
    assert REGISTRY.get_sample_value("gateway_upstream_breaker_state", {"provider": "sandbox"}) == 1
    metrics.set_breaker_state("sandbox", "closed")
    assert REGISTRY.get_sample_value("gateway_upstream_breaker_state", {"provider": "sandbox"}) == 0
