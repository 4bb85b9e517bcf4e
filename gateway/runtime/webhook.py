"""One webhook, start to finish::

    admit (route, inbound key, operation, content type, decode: admission.py)
      -> idempotency (claim or replay: idempotency/)
      -> run the mapping's steps under the deadline (engine.py)
      -> respond, and log one line

Every failure becomes the spec's Error body with the status its class carries.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Mapping

import msgspec

from .. import contracts, logs
from ..errors import (
    DeadlineExceeded,
    ProviderUnavailable,
    RequestRejected,
    WebhookError,
)
from ..observe import context, metrics
from ..plan import GatewayPlan, OperationPlan, ProviderPlan
from . import admission as inbound
from . import deadlines
from .engine import RunState, run_operation
from .idempotency import Answer
from .lifecycle import Runtime
from .upstream.client import Upstream

BodyReader = Callable[[], Awaitable[bytes]]


async def handle(rt: Runtime, headers: Mapping[str, str], read_body: BodyReader, contract_name: str,
                 provider_name: str, operation: str, path: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """One webhook of one of NewStore's contracts (``contract_name``): status and body to answer.

    ``headers`` are the request's (names looked up in lowercase); ``read_body`` is called once,
    after the checks that need no body, and raises a :class:`WebhookError` if the body cannot be
    had (too large, too slow); ``path`` holds the route's parameters (a payment operation's
    ``financial_instrument_id``). No web framework here: ``gateway.http`` adapts it."""
    started = time.perf_counter()
    state = RunState()
    path = dict(path or {})
    the_contract = contracts.CONTRACTS[contract_name]
    scope = context.bind(provider_name, operation)  # every log line of this request names them
    log: dict[str, Any] = {"request_id": scope.request_id, "provider": provider_name, "operation": operation}
    retry_safe = False
    try:
        provider, op, decoded = await _admit(rt.plan, headers, read_body, the_contract, provider_name, operation, path)
        retry_safe = op.retry_safe
        log["card"] = logs.mask_card(_card_number(decoded))
        deadline_at = time.monotonic() + provider.deadline
        spec = contracts.OPERATIONS[operation]
        key = getattr(decoded, spec.key_field, None)

        async def run() -> Answer:
            return await execute(provider, rt.upstreams[provider.name], op, decoded, path, state, deadline_at, log,
                                 rt.loop)

        if spec.idempotent and key is None:
            # NewStore's spec allows it; then a retry runs the provider call again.
            log["warning"] = f"no {spec.key_field}: a retry of this request is not recognised as one"
        if rt.idempotency is not None and spec.idempotent and key:
            scope = operation if not spec.path_param else f"{operation}\0{path.get(spec.path_param, '')}"
            answer, replayed = await rt.idempotency.run(provider_name, scope, key, contracts.encode(decoded),
                                                        deadline_at, run)
            if replayed:
                log["outcome"] = "replayed"
                if log["card"] is None and answer.status == 200:  # issue: the number is in the stored answer
                    log["card"] = logs.mask_card(_card_in_body(answer.body))
        else:
            answer = await run()
    except WebhookError as exc:
        answer = _error_answer(exc, log, the_contract, retry_safe)
    seconds = time.perf_counter() - started
    log.update(status=answer.status, calls=state.calls, duration_ms=round(seconds * 1000, 1))
    level, line = logs.webhook_line(log)
    # The log line and the metrics are written on the loop's next turn, once the answer is on its
    # way: NewStore does not wait for them (README, "Logs").
    (rt.loop or asyncio.get_running_loop()).call_soon(
        _after_answer, level, line, metrics.label(provider_name, rt.plan.providers),
        metrics.label(operation, the_contract.operations), answer.status, seconds)
    return answer.status, answer.body


def _after_answer(level: int, line: dict[str, Any], provider: str, operation: str, status: int,
                  seconds: float) -> None:
    """A webhook's log line and metrics, after its answer: the HTTP front writes the answer to the
    socket in the same turn of the loop as ``handle`` returns (nothing in between waits), so this
    runs once the bytes are sent. The line keeps the request's scope (``call_soon`` runs it in a
    copy of the request's context)."""
    try:
        logs.write_webhook(level, line)
    finally:
        metrics.webhook_done(provider, operation, line.get("outcome", "unknown"), status, seconds,
                             line.get("error_code"))


async def _admit(plan: GatewayPlan, headers: Mapping[str, str], read_body: BodyReader, the_contract: contracts.Contract,
                 provider_name: str, operation: str,
                 path: Mapping[str, str]) -> tuple[ProviderPlan, OperationPlan, msgspec.Struct]:
    """Everything checked before anything is claimed or sent; failures are never stored."""
    provider = plan.providers.get(provider_name)
    if provider is None:
        raise RequestRejected(f"unknown provider `{provider_name}`", error_code="unknown_provider")
    inbound.authenticate(provider, headers)
    if operation not in the_contract.operations:
        raise RequestRejected(
            f"unknown operation `{operation}`; NewStore's {the_contract.title} are: {', '.join(the_contract.operations)}",
            error_code="unknown_operation",
        )
    op = provider.mapping.operations.get(operation)
    if op is None or op.unsupported is not None:
        reason = op.unsupported if op is not None else "the mapping does not map it"
        raise RequestRejected(f"provider `{provider_name}` does not support `{operation}`: {reason}",
                              error_code="unsupported_operation")
    inbound.check_content_type(headers.get("content-type"))
    body = await read_body()
    decoded = inbound.decode(operation, body)
    the_contract.admit(contracts.OPERATIONS[operation], decoded, path)
    return provider, op, decoded


async def execute(provider: ProviderPlan, upstream: Upstream, op: OperationPlan, decoded: msgspec.Struct,
                  path: Mapping[str, str], state: RunState, deadline_at: float, log: dict[str, Any],
                  loop: asyncio.AbstractEventLoop | None = None) -> Answer:
    """Run the steps within the deadline (``time.monotonic()`` based): NewStore's status and body,
    and whether the answer is definitive (and so may be replayed). ``gateway render --send`` runs
    a webhook through here too, so it answers exactly what NewStore would get."""
    the_contract = contracts.contract_of(op.name)
    try:
        the_contract.before_run(contracts.OPERATIONS[op.name], decoded, path)
        try:
            loop = loop or asyncio.get_running_loop()
            loop_deadline = loop.time() + (deadline_at - time.monotonic())
            state.deadline, state.loop = loop_deadline, loop
            async with deadlines.at(loop_deadline, loop):
                result = await run_operation(provider, upstream, op, decoded, state, path=path)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the webhook did not finish within its {provider.deadline:g}s deadline"
                + (f" (in step `{state.step}`); the outcome is unknown" if state.step else ""),
                request_accepted=state.sent,
                details={"step": state.step} if state.step else None,
            ) from None
    except WebhookError as exc:
        return _error_answer(exc, log, the_contract, op.retry_safe)
    log["outcome"] = "ok"
    if log.get("card") is None:  # issue: the card number comes from the provider
        log["card"] = logs.mask_card(_card_number(result.response))
    return Answer(200, result.body, True)


def _error_answer(exc: WebhookError, log: dict[str, Any], the_contract: contracts.Contract,
                  retry_safe: bool) -> Answer:
    log["outcome"] = _outcome(exc)
    log["error_code"] = exc.error_code
    if exc.status >= 500 or log["outcome"] == "mapping_error":
        log["message"] = exc.message
    status, body = the_contract.error_answer(exc, retry_safe)
    return Answer(status, contracts.encode(body), exc.definitive)


def _card_number(value: Any) -> str | None:
    identifier = getattr(value, "identifier", None)
    if identifier is not None:
        return identifier.number
    arguments = getattr(value, "arguments", None)
    instrument = getattr(arguments, "instrument", None)
    if instrument is not None:
        return instrument.identifier
    return getattr(value, "card_number", None)


def _card_in_body(body: bytes) -> str | None:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    identifier = data.get("identifier") if isinstance(data, dict) else None
    number = identifier.get("number") if isinstance(identifier, dict) else None
    return number if isinstance(number, str) else None


def _outcome(exc: WebhookError) -> str:
    if exc.definitive:
        return "provider_rejected"
    if exc.error_code == "mapping_error":
        return "mapping_error"
    if isinstance(exc, ProviderUnavailable):
        return "breaker_open"  # nothing was sent: the provider's circuit breaker is open
    if exc.status >= 500:
        return "unknown"
    return "rejected"
