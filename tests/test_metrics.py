"""Prometheus metrics: /metrics over real HTTP, summed across workers; labels from closed sets only."""

from __future__ import annotations

import asyncio
import glob
import os
import re

import httpx
from prometheus_client import REGISTRY

from gateway.observe import metrics
from tests.conftest import client_for, sandbox_provider, write_config
from tests.operations import Served, samples, value

BALANCE = {"identifier": {"number": "6006491111111111", "pin": "480163"}}
OK = {"provider": "sandbox", "operation": "balance", "outcome": "ok", "status": "200"}


def _in_process(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_webhooks_are_counted_and_summed_across_two_workers(sandbox, tmp_path):
    """With --workers 2 every scrape (answered by either worker) reports what both served."""
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    run_tmp = tmp_path / "run"
    run_tmp.mkdir()
    sent = 0
    with Served(config, tmp_path / "serve.log", "--workers", "2", env={"TMPDIR": str(run_tmp)}) as gw:
        [directory] = glob.glob(str(run_tmp / "gateway-metrics-*"))

        async def batch() -> list[int]:
            # A connection per request, so the two workers' accept loops share them.
            async def one() -> int:
                async with httpx.AsyncClient(timeout=30) as client:
                    return (await client.post(gw.url + "/sandbox/gift_card/balance", json=BALANCE)).status_code
            return await asyncio.gather(*(one() for _ in range(20)))

        def pids() -> set[str]:
            return {m.group(1) for f in os.listdir(directory) if (m := re.fullmatch(r"counter_(\d+)\.db", f))}

        for _ in range(20):  # until both workers have served some (bounded)
            assert set(asyncio.run(batch())) == {200}
            sent += 20
            if len(pids()) >= 2:
                break
        assert len(pids()) == 2, "both workers served webhooks"
        scrapes = [httpx.get(gw.url + "/metrics", headers={"connection": "close"}).text for _ in range(8)]
    for text in scrapes:
        assert value(text, "gateway_webhooks_total", **OK) == sent
        assert value(text, "gateway_webhook_duration_seconds_count", provider="sandbox", operation="balance") == sent
        assert value(text, "gateway_upstream_duration_seconds_count", provider="sandbox", operation="balance",
                     step="lookup", status_class="2xx") == sent
        assert value(text, "gateway_build_info", version=metrics.version()) == 1
    assert not os.path.exists(directory), "serve removes its metrics directory when it stops"


def test_metrics_switched_off(sandbox, tmp_path):
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    with Served(config, tmp_path / "serve.log", "--no-metrics") as gw:
        assert httpx.post(gw.url + "/sandbox/gift_card/balance", json=BALANCE).status_code == 200
        assert httpx.get(gw.url + "/metrics").status_code == 404


def test_names_from_the_url_never_become_labels(sandbox, tmp_path):
    """A client inventing provider and operation names cannot create series (cardinality)."""
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    with client_for(config) as client:
        before = client.get("/metrics").text
        for i in range(5):
            assert client.post(f"/invented-{i}/gift_card/balance", json=BALANCE).status_code == 400
            assert client.post(f"/sandbox/gift_card/op-{i}", json=BALANCE).status_code == 400
        after = client.get("/metrics").text
    assert "invented" not in after and "op-" not in after
    rejected = {"outcome": "rejected", "status": "400"}
    for labels in ({"provider": "_unknown", "operation": "balance"}, {"provider": "sandbox", "operation": "_unknown"}):
        assert (value(after, "gateway_webhooks_total", **labels, **rejected)
                - value(before, "gateway_webhooks_total", **labels, **rejected)) == 5, labels
    # Nothing but names from the plan and enums: no card number or PIN anywhere.
    assert "6006491111111111" not in after and "480163" not in after
    for (_, labels), _v in samples(after).items():
        for label, text in labels:
            assert not re.search(r"\d{6,}", text), (label, text)


def test_upstream_calls_are_classed_by_their_answer(sandbox, tmp_path):
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    labels = {"provider": "sandbox", "operation": "balance", "step": "lookup"}
    before = {c: _in_process("gateway_upstream_duration_seconds_count", **labels, status_class=c)
              for c in ("2xx", "5xx")}
    with client_for(config) as client:
        sandbox.fault("status", status=503)
        assert client.post("/sandbox/gift_card/balance", json=BALANCE).status_code == 502
        assert client.post("/sandbox/gift_card/balance", json=BALANCE).status_code == 200
    for status_class in ("2xx", "5xx"):
        after = _in_process("gateway_upstream_duration_seconds_count", **labels, status_class=status_class)
        assert after - before[status_class] == 1, status_class


def test_unreachable_provider_is_its_own_class(sandbox, tmp_path):
    from tests.operations import free_port

    provider = sandbox_provider(sandbox)
    provider["vars"] = {"base_url": f"http://127.0.0.1:{free_port()}"}  # nothing listens there
    config = write_config(tmp_path, {"sandbox": provider})
    labels = {"provider": "sandbox", "operation": "balance", "step": "lookup", "status_class": "unreachable"}
    before = _in_process("gateway_upstream_duration_seconds_count", **labels)
    with client_for(config) as client:
        assert client.post("/sandbox/gift_card/balance", json=BALANCE).status_code == 502
    assert _in_process("gateway_upstream_duration_seconds_count", **labels) - before == 1
    assert _in_process("gateway_webhooks_total", provider="sandbox", operation="balance", outcome="unknown",
                       status="502") >= 1


def test_replays_and_waits_are_counted(sandbox, tmp_path):
    """Three concurrent duplicates: one runs, two wait for it and replay its answer."""
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    issue = {"amount": {"value": 10, "currency": "USD"}, "customer": {"id": "c-1"}, "idempotence_key": "metrics-dup-1"}
    with Served(config, tmp_path / "serve.log") as gw:
        sandbox.fault("delay", seconds=1.0)

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                first = asyncio.create_task(client.post(gw.url + "/sandbox/gift_card/issue", json=issue))
                await asyncio.sleep(0.3)  # the first holds the key before the duplicates arrive
                rest = [client.post(gw.url + "/sandbox/gift_card/issue", json=issue) for _ in range(2)]
                return list(await asyncio.gather(first, *rest))

        responses = asyncio.run(burst())
        text = httpx.get(gw.url + "/metrics").text
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert value(text, "gateway_idempotency_replays_total", provider="sandbox", operation="issue") == 2
    assert value(text, "gateway_idempotency_waits_total", store="sqlite") == 2
    assert value(text, "gateway_webhooks_total", provider="sandbox", operation="issue", outcome="replayed",
                 status="200") == 2
