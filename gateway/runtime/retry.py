"""Trying a step's provider call again, where that is safe, within the webhook's deadline.

Which failures may be repeated (:func:`verdict`):

- the call certainly sent nothing (could not connect): any step, since the provider saw nothing;
- a timeout, a broken connection, HTTP 5xx or 429, or an error rule marked ``retry: true``:
  only a step that is ``idempotent`` (the provider may have acted on the first try);
- never an error rule's definitive answer, an answer no rule explains, a mapping error, or a
  call the circuit breaker refused (it would refuse the next one too).

How (the step's :class:`~gateway.plan.RetryPlan`): tenacity's exponential backoff with full
jitter (a random wait between 0 and ``backoff * 2**(n-1)``, capped at ``max_backoff``), and a
stop that sees the coming wait, so a retry never sleeps past the deadline. Each try's timeout
is the step's, bounded by what is left of the deadline.

tenacity rather than stamina (which wraps it): stamina's ``timeout`` is checked only after a
try (it would start a wait that ends past the deadline), its jitter is added seconds rather
than a share of the wait, and it installs process-wide logging and Prometheus hooks.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from ..errors import (
    ProviderThrottled,
    ProviderUnavailable,
    UpstreamBadResponse,
    UpstreamConnectionLost,
    UpstreamFailure,
    UpstreamTimeout,
    UpstreamUnreachable,
    WebhookError,
)
from ..plan import StepPlan
from .trace import Attempted, Event
from .upstream.client import UpstreamResponse

T = TypeVar("T")
# A try bounded by the deadline gets a little more than what is left, so that the deadline
# itself ends it and the webhook reports `gateway_deadline_exceeded`, as without retries.
_GRACE = 0.05


def verdict(exc: WebhookError, idempotent: bool) -> tuple[bool, str]:
    """Whether a failed try may be repeated, and why (shown in the trace). ``exc`` is as the
    try raised it: ``request_accepted`` false on an upstream failure means nothing was sent."""
    if isinstance(exc, ProviderUnavailable):
        return False, "the provider's circuit breaker is open"
    if isinstance(exc, UpstreamUnreachable) and not exc.request_accepted:
        return True, "nothing was sent"
    transient = _transient(exc)
    if transient is None:
        return False, "an error rule's definitive answer" if exc.definitive else "not a transient failure"
    if not idempotent:
        return False, f"{transient}, but the request may have reached the provider and the step is not idempotent"
    return True, f"{transient}; the step is idempotent"


def _transient(exc: WebhookError) -> str | None:
    if isinstance(exc, UpstreamTimeout):
        return "the provider did not answer in time"
    if isinstance(exc, UpstreamConnectionLost):
        return "the connection broke"
    if isinstance(exc, ProviderThrottled):
        return "an error rule with `retry: true` matched"
    status = (exc.details or {}).get("upstream_status")
    if isinstance(exc, UpstreamBadResponse) and isinstance(status, int) and (status >= 500 or status == 429):
        return f"HTTP {status}"
    return None


def bounded(timeout: float, deadline: float | None, loop: asyncio.AbstractEventLoop | None = None) -> float:
    """A try's timeout: the step's, or what is left of the deadline (``loop``'s time) if less."""
    if deadline is None:
        return timeout
    left = deadline - (loop or asyncio.get_running_loop()).time()
    return max(min(timeout, left + _GRACE), _GRACE)


class _Deadline(stop_base):
    """Stop when the coming wait would end at or past the deadline."""

    def __init__(self, deadline: float | None, loop: asyncio.AbstractEventLoop | None) -> None:
        self.deadline = deadline
        self.loop = loop

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline is None:
            return False
        return (self.loop or asyncio.get_running_loop()).time() + retry_state.upcoming_sleep >= self.deadline


async def call(step: StepPlan, timeout: float, deadline: float | None, loop: asyncio.AbstractEventLoop | None,
               send: Callable[[float], Awaitable[UpstreamResponse]],
               interpret: Callable[[UpstreamResponse], T], note: Callable[[Event], None]) -> T:
    """One step's call: ``send(timeout)`` then ``interpret(response)`` (which raises the
    mapping's errors), tried again per the step's policy. The error of the last try is raised,
    ``request_accepted`` true if any try may have reached the provider."""
    policy = step.retry
    if policy is None:
        return interpret(await send(bounded(timeout, deadline, loop)))
    reached = False  # whether any try so far may have reached the provider
    last: WebhookError | None = None
    again, why = False, ""  # the verdict on the last failed try

    def scheduled(rs: RetryCallState) -> None:
        code = last.error_code if last is not None else ""
        note(Attempted(step.name, rs.attempt_number, policy.attempts, code, round(rs.upcoming_sleep, 3), why))

    def give_up(rs: RetryCallState) -> None:
        assert last is not None
        reason = "no tries left" if rs.attempt_number >= policy.attempts else "the next try would end past the deadline"
        note(Attempted(step.name, rs.attempt_number, policy.attempts, last.error_code, None, f"{why}; {reason}"))
        raise last

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | _Deadline(deadline, loop),
        wait=wait_random_exponential(multiplier=policy.backoff, max=policy.max_backoff),
        retry=retry_if_exception(lambda exc: exc is last and again),
        before_sleep=scheduled,
        retry_error_callback=give_up,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            try:
                try:
                    response = await send(bounded(timeout, deadline, loop))
                except ProviderUnavailable:
                    if last is None:
                        raise
                    # The breaker opened during our tries: the earlier try's failure says more.
                    again, why = False, "the provider's circuit breaker opened"
                    note(Attempted(step.name, attempt.retry_state.attempt_number, policy.attempts,
                                   "provider_unavailable", None, f"not tried again: {why}"))
                    raise last from None
                except UpstreamFailure as exc:
                    reached = reached or exc.request_accepted
                    raise
                reached = True
                return interpret(response)
            except WebhookError as exc:
                if exc is last:
                    raise
                again, why = verdict(exc, step.idempotent)
                if reached and isinstance(exc, UpstreamFailure):
                    exc.request_accepted = True  # an earlier try may have reached the provider
                last = exc
                if not again:
                    note(Attempted(step.name, attempt.retry_state.attempt_number, policy.attempts, exc.error_code,
                                   None, f"not tried again: {why}"))
                raise
    raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover
