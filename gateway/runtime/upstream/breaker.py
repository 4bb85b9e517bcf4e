"""A circuit breaker per provider, and the upstream that sends through it.

::

    closed --(failures consecutive failures)--> open --(cooldown)--> half_open
    half_open --(the one trial call succeeds)--> closed
    half_open --(it fails)--> open (for another cooldown)

A *failure* is what a provider that is down produces: could not connect, timed out, the
connection broke, HTTP 5xx. Any other answer, a 4xx rejection included, shows the provider is
up and counts as a success. A call that ends otherwise (cancelled by the webhook's deadline,
an answer too large to read) counts as neither.

Our own, rather than purgatory or circuitbreaker (aiobreaker is unmaintained since 2021):
both let *every* call through once the cool-down is over, so after each cool-down a burst of
webhooks would all pay the full timeout of a provider still down, which is what a breaker is
for; both count any exception they are not told is a failure as a success, so a trial call
cancelled by the deadline would close the breaker; a 5xx is an answer here, not an exception;
purgatory times the cool-down with the wall clock and runs an async message bus on each call,
circuitbreaker rounds it to whole seconds. The state machine below is small and holds no lock:
it runs on the event loop and never awaits.

State is per process (each ``--workers`` process and each instance has its own breaker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Literal

from ...errors import (
    ProviderUnavailable,
    UpstreamConnectionLost,
    UpstreamFailure,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from ...plan import BreakerPlan
from ..trace import OutboundRequest
from .client import Upstream, UpstreamResponse

State = Literal["closed", "open", "half_open"]
Listener = Callable[[str, State], None]


@dataclass(frozen=True)
class Ticket:
    """Leave to make one call: the outcome counts only in the state that gave it."""

    generation: int
    probe: bool


class Breaker:
    """One provider's breaker. ``state`` and ``snapshot()`` are for /readyz and metrics;
    ``subscribe(listener)`` calls ``listener(provider, state)`` on every change of state."""

    def __init__(self, provider: str, plan: BreakerPlan, clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        self.plan = plan
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        # Bumped on every change of state: an outcome of a call admitted before it is stale.
        self._generation = 0
        self._listeners: list[Listener] = []

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.plan.cooldown:
            self._move("half_open")
        return self._state

    def snapshot(self) -> dict[str, object]:
        state = self.state
        out: dict[str, object] = {"state": state, "failures": self._failures}
        if state == "open":
            out["retry_in"] = round(self.retry_in(), 3)
        return out

    def retry_in(self) -> float:
        """Seconds until a trial call may go through (0 unless open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.plan.cooldown - self._clock())

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def admit(self) -> Ticket | None:
        """A ticket to send a call, or None: the breaker is open (or a trial call is out)."""
        state = self.state
        if state == "closed":
            return Ticket(self._generation, False)
        if state == "half_open" and not self._probing:
            self._probing = True
            return Ticket(self._generation, True)
        return None

    def success(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return
        if ticket.probe:
            self._move("closed")
        self._failures = 0

    def failure(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return
        self._failures += 1
        if ticket.probe or self._failures >= self.plan.failures:
            self._move("open")

    def release(self, ticket: Ticket) -> None:
        """The call ended without saying anything about the provider: a trial call may go again."""
        if ticket.probe and ticket.generation == self._generation:
            self._probing = False

    def _move(self, state: State) -> None:
        self._state = state
        self._generation += 1
        self._probing = False
        if state == "open":
            self._opened_at = self._clock()
        elif state == "closed":
            self._failures = 0
        for listener in self._listeners:
            listener(self.provider, state)


def is_down(exc: UpstreamFailure) -> bool:
    """Whether a failed call looks like a provider that is down (what the breaker counts)."""
    return isinstance(exc, (UpstreamUnreachable, UpstreamTimeout, UpstreamConnectionLost))


class GuardedUpstream:
    """An :class:`Upstream` whose calls go through the provider's breaker: while it is open a
    call raises :class:`ProviderUnavailable` at once, and nothing is sent."""

    def __init__(self, upstream: Upstream, breaker: Breaker) -> None:
        self.upstream = upstream
        self.breaker = breaker
        self.provider = upstream.provider

    async def send(self, request: OutboundRequest, *, timeout: float, step: str = "") -> UpstreamResponse:
        ticket = self.breaker.admit()
        if ticket is None:
            wait = self.breaker.retry_in()
            when = f"a trial call goes through in {wait:.1f}s" if wait > 0 else "a trial call is under way"
            raise ProviderUnavailable(
                f"step `{step}`: provider `{self.breaker.provider}` is unavailable: its last "
                f"{self.breaker.plan.failures} calls could not connect, timed out or answered 5xx, so this "
                f"one was not sent ({when}); retry later",
                details={"step": step, "retry_after": round(wait, 3)},
            )
        try:
            response = await self.upstream.send(request, timeout=timeout, step=step)
        except UpstreamFailure as exc:
            (self.breaker.failure if is_down(exc) else self.breaker.success)(ticket)
            raise
        except BaseException:  # cancelled (the webhook's deadline): says nothing about the provider
            self.breaker.release(ticket)
            raise
        (self.breaker.failure if response.status >= 500 else self.breaker.success)(ticket)
        return response

    async def aclose(self) -> None:
        await self.upstream.aclose()
