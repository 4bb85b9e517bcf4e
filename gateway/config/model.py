"""The files integrators write, as declared types.

Every Struct forbids unknown fields, so a typo is an error with a "did you mean" rather than a
setting silently ignored; kinds of things are tagged unions on ``type``. The upstream ``auth``
union is made by ``gateway.auth`` from its kinds, each declaring its own Struct there; the
shared :class:`Base` and :class:`SecretRef` live in ``base``. These are the *raw* shapes:
templates are still strings here. ``compile`` turns them into the immutable plan the request
path runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ..auth import NoAuth, UpstreamAuth
from .base import Base, SecretRef

Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=300)]


# --- mapping files -------------------------------------------------------------------------


class ErrorRule(Base):
    """Turns a provider answer into a NewStore error.

    A rule matches when every condition it has holds: ``status`` (a code, ``"4xx"``, or a list
    of them) and ``match`` (a JMESPath expression over the parsed response body that must be
    truthy). ``message`` is a template; ``details`` maps names to JMESPath expressions over the
    body, added to the Error body's ``details``.
    """

    error_code: str
    message: str
    status: int | str | list[int | str] | None = None
    match: str | None = None
    accepted: bool = False
    retry: bool = False
    details: dict[str, str] = {}


class GraphQLBody(Base):
    query: str
    variables: Any = None
    operation_name: str | None = None


class RequestSpec(Base):
    """One HTTP request. Exactly one of ``path`` (joined to ``base_url``) or ``url``; at most
    one body kind: ``json``, ``form``, ``graphql``, ``text`` or ``xml``."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str | None = None
    url: str | None = None
    query: dict[str, Any] = {}
    headers: dict[str, Any] = {}
    json: Any = msgspec.UNSET
    form: dict[str, Any] | None = None
    graphql: GraphQLBody | None = None
    text: str | None = None
    xml: str | None = None
    content_type: str | None = None
    timeout: Seconds | None = None


class Retry(Base):
    """How a failed provider call is tried again: at most ``attempts`` tries in all, waiting a
    random time between 0 and ``backoff * 2**(n-1)`` seconds (capped at ``max_backoff``) before
    try n+1 (exponential backoff with full jitter), never past the webhook's deadline.

    What may be repeated is not set here: a call that certainly sent nothing (connection
    refused) is repeated for any step; a timeout, a broken connection, a 5xx, a 429 or a
    ``retry: true`` error rule only for a step that is ``idempotent``. An error rule's
    definitive answer is never repeated. ``attempts: 1`` turns retries off for a step.
    """

    attempts: Annotated[int, msgspec.Meta(ge=1, le=10, description="tries in all, the first included")] = 3
    backoff: Annotated[float, msgspec.Meta(ge=0, le=60, description="seconds: the first wait is up to this")] = 0.1
    max_backoff: Annotated[float, msgspec.Meta(ge=0, le=300, description="seconds: no wait is longer")] = 2.0


class Step(Base):
    """One provider call. ``retry`` (else the mapping's) says how it is tried again;
    ``idempotent`` says whether sending it twice is harmless (default: true for a ``GET`` and
    for every step of ``balance``, false otherwise), which lets a retry repeat a call that may
    have reached the provider (a timeout, a 5xx)."""

    name: Name
    request: RequestSpec
    if_: str | bool | None = msgspec.field(default=None, name="if")
    parse: Literal["auto", "json", "text", "xml"] = "auto"
    success: str | None = None
    errors: list[ErrorRule] = []
    extract: dict[Name, str] = {}
    retry: Retry | None = None
    idempotent: bool | None = None


class OperationSpec(Base):
    unsupported: str | None = None
    steps: list[Step] = []
    errors: list[ErrorRule] = []
    response: Any = None
    retry_safe: bool = False


class MappingFile(Base):
    """A provider mapping: how the four NewStore operations become provider calls."""

    base_url: str
    description: str | None = None
    headers: dict[str, Any] = {}
    timeout: Seconds = 10.0
    max_response_bytes: Annotated[int, msgspec.Meta(ge=1024, le=104_857_600)] = 1_048_576
    vars: dict[Name, Any] = {}
    secrets: list[Name] = []
    auth: UpstreamAuth = NoAuth()
    errors: list[ErrorRule] = []
    operations: dict[str, OperationSpec] = {}
    # The retry policy of every step that has no `retry` of its own; none: one try.
    retry: Retry | None = None


# --- gateway.yaml --------------------------------------------------------------------------


class InboundKey(Base):
    """How NewStore authenticates to the gateway for one provider.

    The key is compared with the header's value in constant time; with ``scheme: Bearer`` the
    header must read ``Bearer <key>``; with ``scheme: null`` it must be the key itself.
    """

    key: SecretRef
    header: str = "Authorization"
    scheme: str | None = "Bearer"


class Breaker(Base):
    """A provider's circuit breaker (per gateway process): after ``failures`` consecutive calls
    that failed as a provider that is down fails (could not connect, timed out, connection
    broken, HTTP 5xx), calls are not sent for ``cooldown`` seconds: webhooks get 503
    ``provider_unavailable`` at once. Then one trial call goes through; its success closes the
    breaker, its failure opens it again. Answers below 500 (rejections included) count as success."""

    enabled: bool = True
    failures: Annotated[int, msgspec.Meta(ge=1, le=1000, description="consecutive failures that open the breaker")] = 5
    cooldown: Annotated[float, msgspec.Meta(gt=0, le=3600, description="seconds open before a trial call")] = 30.0


class ProviderEntry(Base):
    mapping: str
    inbound: InboundKey | Literal["none"]
    vars: dict[str, Any] = {}
    secrets: dict[str, SecretRef] = {}
    deadline: Seconds | None = None
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 100
    breaker: Breaker = Breaker()


class Companion(Base):
    """A process started with ``gateway serve`` and stopped with it (local development only)."""

    name: str
    command: list[str]
    ready_url: str | None = None
    ready_timeout: Seconds = 15.0


class EncryptionKey(Base):
    """An AES key for stored responses: base64 of 16, 24 or 32 random bytes, by reference."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
    key: SecretRef


class IdempotencySettings(Base):
    store: str = "sqlite:///.gateway/idempotency.sqlite3"
    retention: Annotated[float, msgspec.Meta(gt=0, le=90 * 86400)] = 7 * 86400.0
    lease: Annotated[float, msgspec.Meta(gt=0, le=3600)] | None = None
    # Connections to a Redis or PostgreSQL store, per gateway process. A request that finds them
    # all busy waits for one (within its deadline) instead of failing. SQLite: one per process.
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    encryption_keys: list[EncryptionKey] = []
    key_file: str | None = None


class GatewayFile(Base):
    providers: dict[str, ProviderEntry]
    idempotency: IdempotencySettings | None = None
    deadline: Seconds = 15.0
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=10_485_760)] = 65536
    companions: list[Companion] = []
    # Seconds `gateway serve` lets requests in flight finish when stopped (SIGTERM); at least the
    # longest webhook deadline. Default: that deadline + 5. `--drain-timeout` overrides it.
    drain_timeout: Annotated[float, msgspec.Meta(gt=0, le=3600)] | None = None
