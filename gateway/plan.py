"""The compiled plan: what the request path runs.

Everything here is built once by ``compile`` and never changes: templates are compiled
:class:`~gateway.language.templating.Value` objects, JMESPath expressions are compiled, secrets are
resolved. The request path reads only these objects; it never sees YAML (upstream auth
reaches it as :class:`~gateway.auth.Credentials`, never as a config Struct).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .auth import AuthPlan, Credentials
from .config.secrets import Secret
from .language.templating import Value, Where
from .language.urls import UrlTemplate

Predicate = Any  # a compiled jmespath expression: has .search(data)


@dataclass(frozen=True)
class ErrorRulePlan:
    where: Where
    error_code: str
    message: Value
    statuses: frozenset[int] | None  # None: any status (see language.statuses)
    match: Predicate | None
    accepted: bool
    retry: bool
    details: tuple[tuple[str, Predicate], ...]


@dataclass(frozen=True)
class BodyPlan:
    """How a step's body is built: ``kind`` is json | form | graphql | text | xml | none."""

    kind: str
    value: Value | None
    content_type: str | None


@dataclass(frozen=True)
class RetryPlan:
    """How a step is tried again (``runtime/retry.py`` decides *whether* a failure may be):
    at most ``attempts`` tries in all, waiting a random time up to ``backoff * 2**(n-1)``
    seconds (at most ``max_backoff``) before try n+1, always within the webhook's deadline."""

    attempts: int
    backoff: float
    max_backoff: float


@dataclass(frozen=True)
class BreakerPlan:
    """A provider's circuit breaker: open after ``failures`` consecutive calls that failed as a
    provider that is down fails; let one trial call through ``cooldown`` seconds later."""

    failures: int = 5
    cooldown: float = 30.0


@dataclass(frozen=True)
class StepPlan:
    name: str
    where: Where
    condition: Value | None
    method: str
    target: UrlTemplate  # a path joined to base_url, or an absolute URL
    query: Value
    headers: Value
    body: BodyPlan
    timeout: float | None
    parse: str
    success: Predicate | None
    errors: tuple[ErrorRulePlan, ...]
    extract: tuple[tuple[str, Predicate], ...]
    # The step's own `retry`, else the mapping's; None: one try. `idempotent`: sending it twice
    # cannot act twice, so a try that may have reached the provider may be repeated.
    retry: RetryPlan | None = None
    idempotent: bool = False


@dataclass(frozen=True)
class OperationPlan:
    name: str
    where: Where
    unsupported: str | None
    steps: tuple[StepPlan, ...]
    errors: tuple[ErrorRulePlan, ...]
    response: Value
    # The provider cannot move money twice for one NewStore key (a provider-side idempotency key):
    # an unknown outcome of a payment operation may then be retried (500) rather than reconciled (400).
    retry_safe: bool = False


@dataclass(frozen=True)
class MappingPlan:
    """One mapping file, compiled; shared by every provider (tenant) that uses it."""

    file: str
    base_url: Value
    headers: Value
    timeout: float
    max_response_bytes: int
    auth: AuthPlan  # compiled; each provider binds it to its own secrets
    errors: tuple[ErrorRulePlan, ...]
    operations: Mapping[str, OperationPlan]
    declared_vars: Mapping[str, Any]
    declared_secrets: tuple[str, ...]


@dataclass(frozen=True)
class InboundPlan:
    header: str
    expected: Secret  # the full header value expected, e.g. "Bearer <key>"


@dataclass(frozen=True)
class ProviderPlan:
    """A route of the gateway: one mapping bound to one tenant's variables and secrets."""

    name: str
    mapping: MappingPlan
    base_url: str
    vars: Mapping[str, Any]
    auth: Credentials  # the mapping's auth bound to this tenant's secrets: ready to apply
    inbound: InboundPlan | None
    deadline: float
    max_connections: int
    breaker: BreakerPlan | None = None  # None: no circuit breaker (`gateway test`, `render`)


@dataclass(frozen=True)
class CompanionPlan:
    name: str
    command: tuple[str, ...]
    ready_url: str | None
    ready_timeout: float
    cwd: str


@dataclass(frozen=True)
class IdempotencyPlan:
    store_url: str
    base_dir: str
    retention: float
    lease: float
    keys: tuple[tuple[str, Secret], ...]  # newest first; empty: the generated `key_file`
    key_file: str | None
    max_connections: int = 10  # per process, Redis and PostgreSQL stores
    # Where `idempotency.store` is written (file:line:col), for messages about an unreachable store.
    # Not compared: moving the line does not change the store (a reload keeps it open).
    where: str = field(default="", compare=False)


@dataclass(frozen=True)
class GatewayPlan:
    source: str
    providers: Mapping[str, ProviderPlan]
    max_body_bytes: int
    companions: tuple[CompanionPlan, ...] = ()
    idempotency: IdempotencyPlan | None = None
    drain_timeout: float = 20.0  # seconds requests in flight get when the server stops

    @property
    def longest_deadline(self) -> float:
        return max((p.deadline for p in self.providers.values()), default=0.0)
