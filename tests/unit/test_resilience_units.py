"""Retries and the circuit breaker, piece by piece: what compiles into the plan, which failures
a retry may repeat, the stop at the deadline, and the breaker's state machine on a fake clock.
(Over real HTTP against the sandbox: tests/test_resilience.py.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from gateway.errors import (
    MappingError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    UpstreamBadResponse,
    UpstreamConnectionLost,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gateway.plan import BreakerPlan, RetryPlan
from gateway.runtime.retry import _Deadline, verdict
from gateway.runtime.upstream.breaker import Breaker
from tests.unit.support import HEAD, codes, compile_ok, diagnose

OPS = """\
operations:
  balance:
    steps:
      - name: lookup
        request: {path: /cards/lookup, json: {number: "{{ request.identifier.number }}"}}
        extract: {minor: balance}
    response: {value: "{{ steps.lookup.minor | from_minor('USD') }}", currency: USD}
  issue:
    steps:
      - name: read
        request: {method: GET, path: /config}
      - name: create
        request: {path: /cards, headers: {Idempotency-Key: "{{ idempotence_key }}"}, json: {a: 1}}
        extract: {number: number}
      - name: confirm
        idempotent: true
        retry: {attempts: 5, backoff: 0.5, max_backoff: 4}
        request: {path: /cards/confirm, headers: {Idempotency-Key: "{{ idempotence_key }}"}, json: {a: 1}}
      - name: once
        retry: {attempts: 1}
        request: {path: /cards/once, json: {a: 1}}
    response: {identifier: {number: "{{ steps.create.number }}"}}
  activate: {unsupported: not offered}
  deactivate: {unsupported: not offered}
"""


def test_retry_policy_and_idempotency_compile_into_the_plan(tmp_path):
    plan = compile_ok(tmp_path, HEAD + "retry: {attempts: 3, backoff: 0.1, max_backoff: 1}\n" + OPS)
    lookup = plan.operations["balance"].steps[0]
    read, create, confirm, once = plan.operations["issue"].steps
    assert lookup.retry == RetryPlan(3, 0.1, 1.0) and lookup.idempotent  # balance: a read
    assert read.idempotent and read.retry == RetryPlan(3, 0.1, 1.0)  # GET
    assert not create.idempotent  # a POST of issue, unless the mapping says so
    assert confirm.idempotent and confirm.retry == RetryPlan(5, 0.5, 4.0)  # its own policy
    assert once.retry is None  # attempts: 1 turns the mapping's default off


def test_without_any_retry_every_step_is_tried_once(tmp_path):
    plan = compile_ok(tmp_path, HEAD + OPS.replace("        retry: {attempts: 5, backoff: 0.5, max_backoff: 4}\n", ""))
    assert all(s.retry is None for op in plan.operations.values() for s in op.steps)


def test_a_longest_wait_shorter_than_the_first_is_an_error(tmp_path):
    plan, diagnostics = diagnose(tmp_path, HEAD + "retry: {attempts: 3, backoff: 2, max_backoff: 1}\n" + OPS)
    assert plan is None
    assert codes(diagnostics, "error") == ["GW004"]
    assert "`max_backoff` (1s) is shorter than `backoff` (2s)" in diagnostics[0].message


def test_idempotent_without_a_provider_key_is_warned_about(tmp_path):
    text = HEAD + "retry: {attempts: 3}\n" + OPS.replace("        retry: {attempts: 1}\n", "        idempotent: true\n")
    plan, diagnostics = diagnose(tmp_path, text)
    assert plan is not None  # a warning: the mapping still serves
    warned = [d for d in diagnostics if d.code == "GW051"]
    assert len(warned) == 1 and "a retry after a timeout could issue twice" in warned[0].message


E = {"step": "s"}


@pytest.mark.parametrize(("exc", "idempotent", "again"), [
    (UpstreamUnreachable("x", request_accepted=False, details=E), False, True),  # nothing was sent
    (UpstreamTimeout("x", request_accepted=True, details=E), False, False),
    (UpstreamTimeout("x", request_accepted=True, details=E), True, True),
    (UpstreamConnectionLost("x", request_accepted=True, details=E), True, True),
    (UpstreamBadResponse("x", error_code="provider_error", request_accepted=True,
                         details={"step": "s", "upstream_status": 503}), True, True),
    (UpstreamBadResponse("x", error_code="provider_error", request_accepted=True,
                         details={"step": "s", "upstream_status": 503}), False, False),
    (UpstreamBadResponse("x", error_code="provider_unexpected_response", request_accepted=True,
                         details={"step": "s", "upstream_status": 429}), True, True),
    (UpstreamBadResponse("x", error_code="provider_unexpected_response", request_accepted=True,
                         details={"step": "s", "upstream_status": 409}), True, False),
    (UpstreamBadResponse("unreadable", request_accepted=True, details={"step": "s", "upstream_status": 200}), True, False),
    (ProviderThrottled("x", error_code="rate_limit", details=E), True, True),
    (ProviderRejected("x", error_code="card_not_found", details=E), True, False),  # definitive
    (ProviderUnavailable("x", details=E), True, False),  # the breaker would refuse again
    (MappingError("x", request_accepted=True), True, False),
])
def test_which_failures_a_retry_may_repeat(exc, idempotent, again):
    assert verdict(exc, idempotent)[0] is again


def test_no_wait_ends_past_the_deadline():
    async def check() -> tuple[bool, bool]:
        now = asyncio.get_running_loop().time()
        stop = _Deadline(now + 1.0, None)
        return stop(SimpleNamespace(upcoming_sleep=0.2)), stop(SimpleNamespace(upcoming_sleep=5.0))

    assert asyncio.run(check()) == (False, True)
    assert _Deadline(None, None)(SimpleNamespace(upcoming_sleep=1e9)) is False


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_only():
    clock = Clock()
    breaker = Breaker("p", BreakerPlan(failures=3, cooldown=10), clock)
    for _ in range(2):
        breaker.failure(breaker.admit())
    breaker.success(breaker.admit())  # a success in between: the count starts again
    for _ in range(2):
        breaker.failure(breaker.admit())
    assert breaker.state == "closed"
    breaker.failure(breaker.admit())
    assert breaker.state == "open" and breaker.admit() is None
    assert breaker.snapshot() == {"state": "open", "failures": 3, "retry_in": 10.0}


def test_half_open_lets_one_trial_call_through():
    clock = Clock()
    breaker = Breaker("p", BreakerPlan(failures=1, cooldown=10), clock)
    breaker.failure(breaker.admit())
    clock.now += 9.9
    assert breaker.admit() is None
    clock.now += 0.2
    assert breaker.state == "half_open"
    probe = breaker.admit()
    assert probe is not None and probe.probe
    assert breaker.admit() is None  # a second webhook meanwhile is not sent
    breaker.release(probe)  # the trial was cancelled (the webhook's deadline): it says nothing
    assert breaker.state == "half_open"
    probe = breaker.admit()
    breaker.failure(probe)
    assert breaker.state == "open" and breaker.retry_in() == 10.0
    clock.now += 10
    probe = breaker.admit()
    breaker.success(probe)
    assert breaker.state == "closed" and breaker.admit() is not None


def test_an_outcome_from_before_a_change_of_state_is_ignored():
    clock = Clock()
    breaker = Breaker("p", BreakerPlan(failures=2, cooldown=10), clock)
    slow = breaker.admit()  # a call still under way while the breaker opens
    breaker.failure(breaker.admit())
    breaker.failure(breaker.admit())
    assert breaker.state == "open"
    breaker.success(slow)  # answered late: it does not close the breaker
    assert breaker.state == "open"


def test_listeners_hear_every_change_of_state():
    clock = Clock()
    heard: list[tuple[str, str]] = []
    breaker = Breaker("acme", BreakerPlan(failures=1, cooldown=1), clock)
    breaker.subscribe(lambda provider, state: heard.append((provider, state)))
    breaker.failure(breaker.admit())
    clock.now += 1
    breaker.success(breaker.admit())
    assert heard == [("acme", "open"), ("acme", "half_open"), ("acme", "closed")]
