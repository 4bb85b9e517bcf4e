"""Scale-out under faults, short: HAProxy on deploy/haproxy.cfg in front of three `gateway serve`
instances sharing PostgreSQL, then Redis (benchmarks/scaleout.py --short; the full sizes by hand).

One instance is SIGKILLed and another SIGTERMed during a mixed load in which every idempotency
key is sent three times at once; failed requests are retried with their key as NewStore does.
Every key must end answered, with byte-identical answers and one effect at the sandbox provider
(one card per issue key, one hold/redemption/credit/release per purchase, exact funds), every
5xx must be NewStore's JSON Error body, and with every instance down HAProxy itself must answer
503 `gateway_unavailable`, `request_accepted: false`. Throughput is printed, never asserted.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import scaleout
from tests import stores


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_three_instances_behind_haproxy_survive_a_kill_and_a_rolling_restart(kind: str) -> None:
    stores.require(kind)
    url = stores.POSTGRES_URL if kind == "postgres" else stores.REDIS_URL
    report = scaleout.run(kind, scaleout.SHORT, store_url=url)
    print(report.text())
    assert report.problems == []
    assert report.requests == scaleout.expected_requests(scaleout.SHORT)
    assert report.unanswered == 0
    # The faults happened under load: the kill, then the SIGTERM once the killed one was back.
    assert [f.split()[:2] for f in report.faults][:4] == [["gw1", "SIGKILL"], ["gw1", "back"], ["gw2", "SIGTERM"],
                                                          ["gw2", "exited"]]
    status, content_type, body = report.all_down.split(" ", 2)
    assert (status, content_type) == ("503", "application/json")
    assert json.loads(body)["request_accepted"] is False
    assert sorted(report.throughput) == [1, 2, 3]
    assert all(t["errors"] == 0 for t in report.throughput.values())
