"""The gateway's Prometheus metrics: every definition, and the small functions the runtime calls.

The request path calls one function per event (``webhook_done``, ``upstream_call``, …); each
is a label lookup and an increment, or nothing at all when metrics are off (``gateway serve
--no-metrics``). Label values come only from closed sets: provider and operation names of the
plan (a name from the URL that the plan does not know is :data:`UNKNOWN`, so a client cannot
create series at will), step names of the mapping, outcome and status enums, store kinds.
Never a card number, PIN, key or free-text message.

Several worker processes (``gateway serve --workers N``): prometheus-client's multiprocess mode.
``gateway serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers
start (prometheus-client reads it when first imported, so it must be set before then); each
worker writes its values to its own files there, and ``/metrics`` in any worker sums them all.
"""

from __future__ import annotations

import glob
import os
import re
import time
from importlib import metadata
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from ..errors import ProviderUnavailable, UpstreamTimeout, UpstreamUnreachable

UNKNOWN = "_unknown"  # the label of a provider or operation name the plan does not have
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds. Webhooks run under a deadline of 15 s by default; providers usually answer in 50-500 ms.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)

WEBHOOKS = Counter(
    "gateway_webhooks", "Webhooks answered, by provider, operation, outcome and HTTP status.",
    ["provider", "operation", "outcome", "status"])
WEBHOOK_SECONDS = Histogram(
    "gateway_webhook_duration_seconds", "Time from a webhook's arrival to its answer.",
    ["provider", "operation"], buckets=_LATENCY_BUCKETS)
UPSTREAM_SECONDS = Histogram(
    "gateway_upstream_duration_seconds",
    "Time of one provider call (one step), by the class of its answer: 2xx..5xx, or timeout, "
    "unreachable, failed (no usable answer).",
    ["provider", "operation", "step", "status_class"], buckets=_LATENCY_BUCKETS)
IDEMPOTENCY_REPLAYS = Counter(
    "gateway_idempotency_replays", "Duplicates answered with the stored response.", ["provider", "operation"])
IDEMPOTENCY_IN_PROGRESS = Counter(
    "gateway_idempotency_in_progress",
    "Duplicates answered 503 request_in_progress (the first request had no definitive answer in time).",
    ["provider", "operation"])
IDEMPOTENCY_WAITS = Counter(
    "gateway_idempotency_waits", "Duplicates that found their key held by a running request and waited.", ["store"])
IDEMPOTENCY_STORE_ERRORS = Counter(
    "gateway_idempotency_store_errors", "Idempotency store operations that failed or timed out.", ["store", "action"])
OAUTH_TOKEN_FETCHES = Counter(
    "gateway_oauth_token_fetches", "OAuth2 access tokens fetched from a provider's token endpoint.", ["provider"])
# Each worker has its own breaker per provider: the worst state among the live workers.
BREAKER_STATE = Gauge(
    "gateway_upstream_breaker_state", "Circuit breaker to a provider: 0 closed, 1 half-open, 2 open.",
    ["provider"], multiprocess_mode="livemax")
BUILD_INFO = Gauge(
    "gateway_build_info", "Always 1; the gateway's version in the label.", ["version"], multiprocess_mode="max")

BreakerState = Literal["closed", "half_open", "open"]
_BREAKER_VALUES: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}
_enabled = True


def version() -> str:
    try:
        return metadata.version("newstore-giftcard-gateway")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


BUILD_INFO.labels(version=version()).set(1)


def configure(enabled: bool) -> None:
    """``gateway serve --no-metrics``: every function below does nothing, ``/metrics`` is 404."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


# --- what the runtime calls -------------------------------------------------------------------

# `.labels()` validates and locks on every call (a few % of a webhook's time): the child of each
# label combination is looked up once and kept. The label values are closed sets (see above),
# so this stays small; metrics here are never cleared or removed, so a kept child stays the one.
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *values: str) -> Any:
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def webhook_done(provider: str, operation: str, outcome: str, status: int, seconds: float,
                 error_code: str | None = None) -> None:
    """One webhook answered. ``provider`` and ``operation`` must already be the plan's names or
    :data:`UNKNOWN` (see :func:`label`); ``error_code`` is the gateway's own (never free text)."""
    if _enabled:
        _child(WEBHOOKS, provider, operation, outcome, str(status)).inc()
        _child(WEBHOOK_SECONDS, provider, operation).observe(seconds)
        if outcome == "replayed":
            IDEMPOTENCY_REPLAYS.labels(provider, operation).inc()
        elif error_code == "request_in_progress":
            IDEMPOTENCY_IN_PROGRESS.labels(provider, operation).inc()


def label(name: str, known: object) -> str:
    """``name`` if ``known`` (a mapping or set of the plan's names) holds it, else :data:`UNKNOWN`."""
    return name if name in known else UNKNOWN  # type: ignore[operator]


class upstream_call:
    """Time one provider call: ``with upstream_call(...) as call: ...; call.status = response.status``.
    A call that raises is classed by its error (timeout, unreachable, failed).

    A class rather than a ``@contextmanager`` generator: it runs for every provider call, and the
    generator's machinery cost more than the timing itself."""

    __slots__ = ("provider", "operation", "step", "status", "started")

    def __init__(self, provider: str, operation: str, step: str) -> None:
        self.provider, self.operation, self.step = provider, operation, step
        self.status = 0  # set by the caller once the provider answered

    def __enter__(self) -> upstream_call:
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            status = self.status
            status_class = f"{status // 100}xx" if 100 <= status < 600 else "failed"
        elif issubclass(kind, ProviderUnavailable):
            return  # the circuit breaker answered: no call was made, nothing to time
        elif issubclass(kind, UpstreamTimeout):
            status_class = "timeout"
        elif issubclass(kind, UpstreamUnreachable):
            status_class = "unreachable"
        else:
            status_class = "failed"
        _upstream(self.provider, self.operation, self.step, status_class, self.started)


def _upstream(provider: str, operation: str, step: str, status_class: str, started: float) -> None:
    if _enabled:
        _child(UPSTREAM_SECONDS, provider, operation, step, status_class).observe(time.perf_counter() - started)


def idempotency_waited(store: str) -> None:
    if _enabled:
        IDEMPOTENCY_WAITS.labels(store).inc()


def store_error(store: str, action: Literal["claim", "complete", "release", "purge"]) -> None:
    if _enabled:
        IDEMPOTENCY_STORE_ERRORS.labels(store, action).inc()


def token_fetched(provider: str) -> None:
    if _enabled:
        OAUTH_TOKEN_FETCHES.labels(provider).inc()


def set_breaker_state(provider: str, state: BreakerState) -> None:
    """For the circuit breaker: call on every change of a provider's breaker state (/readyz reads
    the live runtime's breakers themselves)."""
    if _enabled:
        BREAKER_STATE.labels(provider).set(_BREAKER_VALUES[state])


# --- /metrics ---------------------------------------------------------------------------------

def exposition() -> tuple[bytes, str]:
    """The text ``/metrics`` answers, and its content type: this process's metrics, or, in
    multiprocess mode, every worker's summed (gauges as their mode says)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    forget_dead_workers(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST


_PID = re.compile(r"_(\d+)\.db$")


def forget_dead_workers(directory: str) -> None:
    """``mark_process_dead`` for every worker whose live-gauge files outlived it (a crash, a
    kill): its breaker states must not count any more. Its counters and histograms stay, so
    totals never go backwards when uvicorn replaces a worker."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = _PID.search(path)
        if match and not _alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), directory)


def worker_stopped() -> None:
    """A worker's clean exit: its live gauges stop counting."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        multiprocess.mark_process_dead(os.getpid(), directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
