"""What a run did, step by step, as typed events: read by ``gateway render --send`` and
``gateway test`` (a webhook in production keeps no trace). Values are as sent and received;
whoever shows them masks them (``gateway.redact``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 4-5x (built per webhook)
class OutboundRequest:
    """One step's request, rendered: what ``upstream`` sends (credentials are added there)."""

    method: str
    url: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    content: bytes | None
    # The mapping's `path`/`url` as written (templates unrendered): what a trace may show, since
    # the rendered URL may carry a card number.
    route: str = ""


@dataclass(frozen=True)
class Skipped:
    step: str  # its `if` was false


@dataclass(frozen=True)
class Sent:
    step: str
    request: OutboundRequest


@dataclass(frozen=True)
class Answered:
    step: str
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed, or the raw bytes when the answer could not be parsed


@dataclass(frozen=True)
class RuleMatched:
    step: str
    where: str  # file:line of the error rule
    error_code: str


@dataclass(frozen=True)
class Extracted:
    step: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Attempted:
    """A try of a step with a retry policy failed: whether and when it is tried again."""

    step: str
    attempt: int  # 1-based
    attempts: int  # the policy's tries in all
    error_code: str  # how this try failed
    retry_in: float | None  # seconds until the next try; None: not tried again
    why: str  # why it is, or is not, tried again


Event = Skipped | Sent | Answered | RuleMatched | Extracted | Attempted
