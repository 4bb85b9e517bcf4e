"""Run one compiled operation: steps in order, error rules, extraction, the NewStore response.

::

    for each step:  condition -> render request -> send -> parse
                    -> error rules (step, operation, mapping) -> success check -> extract
    then:           render the response -> validate it against NewStore's response type

Every failure leaves as a :class:`~gateway.errors.WebhookError` that knows its status,
``error_code`` and ``request_accepted``; ``RunState.sent`` records whether any request of this
webhook may have reached the provider, which decides ``request_accepted`` for unknown outcomes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping, NamedTuple

import msgspec

from .. import contracts
from ..errors import (
    MappingError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    RequestRejected,
    UpstreamBadResponse,
    UpstreamFailure,
    WebhookError,
)
from ..language import expressions
from ..language.templating import RenderError
from ..language.urls import NullInUrl, UrlRefused, is_absolute_http
from ..observe import context as request_scope
from ..observe import metrics
from ..plan import ErrorRulePlan, OperationPlan, ProviderPlan, StepPlan
from . import retry
from .trace import (
    Answered,
    Event,
    Extracted,
    OutboundRequest,
    RuleMatched,
    Sent,
    Skipped,
)
from .upstream.client import Upstream, UpstreamResponse
from .upstream.codecs import ENCODERS, PARSERS, BodyError, ParseFailure, parser_for


@dataclass(slots=True)
class RunState:
    """What a run has done so far; read by the caller when the deadline cuts it short."""

    sent: bool = False
    step: str | None = None
    calls: int = 0
    deadline: float | None = None  # the webhook's, in event loop time: bounds each try and retry
    loop: asyncio.AbstractEventLoop | None = None  # whose clock `deadline` is on
    # When a list, every step appends what it did (gateway render --send, gateway test).
    trace: list[Event] | None = None

    def note(self, event: Event) -> None:
        if self.trace is not None:
            self.trace.append(event)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 4-5x (built per webhook)
class Result:
    """NewStore's response, validated, and its exact bytes."""

    response: msgspec.Struct
    body: bytes


async def run_operation(provider: ProviderPlan, upstream: Upstream, op: OperationPlan,
                        request: msgspec.Struct, state: RunState, *, now: dt.datetime | None = None,
                        path: Mapping[str, str] | None = None) -> Result:
    steps: dict[str, Any] = {}
    ctx = context(provider, op, request, steps, now=now, path=path)
    for step in op.steps:
        state.step = step.name
        steps[step.name] = await _run_step(provider, upstream, op, step, ctx, state)
    state.step = None
    try:
        data = op.response.render(ctx)
    except RenderError as exc:
        raise _mapping_error(provider, op, None, f"the response does not render: {exc.message} (line {exc.where.line})", state) from None
    try:
        response = contracts.build_response(op.name, data)
    except msgspec.ValidationError as exc:
        raise _mapping_error(provider, op, None, f"the response does not match NewStore's `{op.name}` response: {exc}", state) from None
    try:
        # Free-form fields (metadata) pass validation as they are; encoding is their real test.
        return Result(response, contracts.encode(response))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise _mapping_error(provider, op, None, f"the response cannot be encoded as JSON ({type(exc).__name__})", state) from None


async def _run_step(provider: ProviderPlan, upstream: Upstream, op: OperationPlan, step: StepPlan,
                    ctx: dict[str, Any], state: RunState) -> dict[str, Any]:
    try:
        if step.condition is not None and not step.condition.render(ctx):
            state.note(Skipped(step.name))
            return _skipped(step)
        request = _render_request(provider, step, ctx)
        if state.trace is not None:
            state.note(Sent(step.name, request))
    except RenderError as exc:
        if exc.input:
            raise RequestRejected(f"step `{step.name}`: {exc.message}", request_accepted=state.sent,
                                  details={"step": step.name}) from None
        raise _mapping_error(provider, op, step, f"the request does not render: {exc.message} (line {exc.where.line})", state) from None
    except BodyError as exc:
        raise _mapping_error(provider, op, step, f"the request does not render: {exc}", state) from None
    except NullInUrl:
        raise _mapping_error(provider, op, step, "a value in the request's `path`/`url` is null (did an earlier "
                             "step extract nothing?); null is never sent as text", state) from None
    except UrlRefused as exc:
        if exc.source == "request":
            raise RequestRejected(f"step `{step.name}`: the request cannot be sent to the provider: {exc.message}",
                                  request_accepted=state.sent, details={"step": step.name}) from None
        raise UpstreamBadResponse(f"step `{step.name}`: an earlier answer of the provider cannot be used in a URL: "
                                  f"{exc.message}", request_accepted=state.sent, details={"step": step.name}) from None

    sent_before = state.sent
    state.sent = True  # from here on the provider may have seen something

    async def send(timeout: float) -> UpstreamResponse:
        state.calls += 1
        try:
            with metrics.upstream_call(provider.name, op.name, step.name) as call:
                response = await upstream.send(request, timeout=timeout, step=step.name)
                call.status = response.status
                return response
        except ProviderUnavailable:
            state.calls -= 1  # the circuit breaker is open: nothing was sent
            raise

    try:
        return await retry.call(step, step.timeout or provider.mapping.timeout, state.deadline, state.loop, send,
                                lambda response: _interpret(provider, op, step, ctx, response, state), state.note)
    except UpstreamFailure as exc:
        if not exc.request_accepted:  # certainly not sent: only earlier steps count
            state.sent = sent_before
            exc.request_accepted = sent_before
        raise


def context(provider: ProviderPlan, op: OperationPlan, request: msgspec.Struct, steps: dict[str, Any], *,
            now: dt.datetime | None = None, path: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a template of this operation can read: the names its contract declares, and the rest."""
    spec = contracts.OPERATIONS[op.name]
    return {
        **_ABSENT,  # mapping-level templates may read another contract's names: null here
        "request": request,
        "steps": steps,
        "vars": provider.vars,
        "now": now or dt.datetime.now(dt.UTC),
        "webhook_id": request_scope.new_id(),  # unique per webhook: references for providers that need one
        "request_id": request_scope.request_id(),  # X-Request-ID (kept or made): a mapping may send it on
        **contracts.CONTRACTS[spec.contract].context(spec, request, path or {}),
    }


_ABSENT = {name: None for c in contracts.CONTRACTS.values() for name in c.context_names}


class DryStep(NamedTuple):
    step: str
    kind: Literal["request", "skipped", "unknown", "refused"]
    detail: OutboundRequest | str  # the request, or why there is none


def dry_run(provider: ProviderPlan, op: OperationPlan, request: msgspec.Struct, *,
            now: dt.datetime | None = None, path: Mapping[str, str] | None = None) -> list[DryStep]:
    """Render every step's request without sending anything (``gateway render``).

    Earlier steps' extracted values are unknown without the provider's answers, so they are
    null here; a step whose condition or request needs them says so instead of a request.
    Returns a :class:`DryStep` per step: kind is ``request`` (detail: the request), ``skipped``, ``unknown`` (why it cannot be rendered offline) or ``refused``
    (NewStore's input is unusable: the 400 it would get).
    """
    steps: dict[str, Any] = {}
    ctx = context(provider, op, request, steps, now=now, path=path)
    out: list[DryStep] = []
    for step in op.steps:
        steps[step.name] = _skipped(step)
        try:
            if step.condition is not None and not step.condition.render(ctx):
                out.append(DryStep(step.name, "skipped", "its `if` is false"))
                continue
            out.append(DryStep(step.name, "request", _render_request(provider, step, ctx)))
        except RenderError as exc:
            if exc.input:
                out.append(DryStep(step.name, "refused", f"NewStore would get 400 invalid_request: {exc.message}"))
            else:
                out.append(DryStep(step.name, "unknown", f"cannot be rendered without the provider's answers: {exc.message}"))
        except BodyError as exc:
            out.append(DryStep(step.name, "unknown", f"cannot be rendered without the provider's answers: {exc}"))
        except NullInUrl:
            out.append(DryStep(step.name, "unknown", "its URL needs an earlier step's answer"))
        except UrlRefused as exc:
            if exc.source == "request":
                out.append(DryStep(step.name, "refused", f"NewStore would get 400 invalid_request: {exc.message}"))
            else:
                out.append(DryStep(step.name, "unknown", "its URL needs an earlier step's answer"))
    return out


def _render_request(provider: ProviderPlan, step: StepPlan, ctx: dict[str, Any]) -> OutboundRequest:
    url = step.target.render(ctx, provider.base_url)
    if not is_absolute_http(url):
        raise BodyError("the step's `url` must render to an absolute http(s) URL")
    params = {k: _scalar(v) for k, v in step.query.render(ctx).items() if v is not None}
    headers: dict[str, str] = {}
    names: dict[str, str] = {}  # lowercase name -> the name in `headers`
    for source in (provider.mapping.headers.render(ctx), step.headers.render(ctx)):
        for name, value in source.items():
            low = name.lower()
            existing = names.pop(low, None)
            if existing is not None:
                del headers[existing]  # a step's header replaces the mapping's, whatever its case
            if value is not None:
                headers[name] = _header_value(name, value)
                names[low] = name
    content = None
    if step.body.kind != "none":
        assert step.body.value is not None
        content = ENCODERS[step.body.kind](step.body.value.render(ctx))
        if "content-type" not in names:
            headers["Content-Type"] = step.body.content_type or "application/octet-stream"
    return OutboundRequest(step.method, url, params, headers, content, route=step.target.route)


def _interpret(provider: ProviderPlan, op: OperationPlan, step: StepPlan, ctx: dict[str, Any],
               response: UpstreamResponse, state: RunState) -> dict[str, Any]:
    parser = parser_for(step.parse, response.headers.get("content-type"))
    parse_error: str | None = None
    try:
        body = PARSERS[parser](response.content)
    except ParseFailure as exc:
        body, parse_error = None, str(exc)
    raw = {"status": response.status, "headers": dict(response.headers), "body": body}
    if state.trace is not None:  # (the events are built only when someone reads them)
        state.note(Answered(step.name, response.status, raw["headers"], body if parse_error is None else response.content))

    rule = _first_match((step.errors, op.errors, provider.mapping.errors), response.status, body, parse_error is None)
    if rule is not None:
        state.note(RuleMatched(step.name, str(rule.where), rule.error_code))
        raise _rule_error(provider, op, step, rule, ctx, raw, state)

    details = {"step": step.name, "upstream_status": response.status}
    ok = 200 <= response.status < 300 and parse_error is None
    if ok and step.success is not None:
        ok = _truthy(_search(step.success, body))
    if not ok:
        if response.status >= 500:
            raise UpstreamBadResponse(f"step `{step.name}`: the provider answered HTTP {response.status}",
                                      error_code="provider_error", request_accepted=True, details=details)
        if parse_error is not None:
            raise UpstreamBadResponse(f"step `{step.name}`: the provider's answer could not be read: {parse_error}",
                                      request_accepted=True, details=details)
        if 200 <= response.status < 300:
            why = "did not meet the step's `success` condition"
        else:
            why = f"was HTTP {response.status}"
        raise UpstreamBadResponse(f"step `{step.name}`: the provider's answer {why} and no error rule of the mapping explains it",
                                  error_code="provider_unexpected_response", request_accepted=True, details=details)

    result: dict[str, Any] = {"response": raw}
    for name, expr in step.extract:
        try:
            result[name] = expressions.search(expr, body)
        except expressions.ExpressionError as exc:
            raise _mapping_error(provider, op, step, f"extracting `{name}` failed: {exc}", state) from None
    if state.trace is not None:
        state.note(Extracted(step.name, {k: v for k, v in result.items() if k != "response"}))
    return result


def _first_match(groups: tuple[tuple[ErrorRulePlan, ...], ...], status: int, body: Any, parsed: bool) -> ErrorRulePlan | None:
    for rules in groups:
        for rule in rules:
            if rule.statuses is not None and status not in rule.statuses:
                continue
            if rule.match is not None and (not parsed or not _truthy(_search(rule.match, body))):
                continue
            return rule
    return None


def _rule_error(provider: ProviderPlan, op: OperationPlan, step: StepPlan, rule: ErrorRulePlan,
                ctx: dict[str, Any], raw: dict[str, Any], state: RunState) -> WebhookError:
    try:
        message = str(rule.message.render({**ctx, "response": raw["body"]}))
    except RenderError as exc:
        return _mapping_error(provider, op, step, f"an error rule's message does not render: {exc.message}", state)
    details: dict[str, Any] = {"step": step.name, "upstream_status": raw["status"]}
    for name, expr in rule.details:
        details[name] = _search(expr, raw["body"])
    cls = ProviderThrottled if rule.retry else ProviderRejected
    return cls(message, error_code=rule.error_code, request_accepted=rule.accepted, details=details)


def _mapping_error(provider: ProviderPlan, op: OperationPlan, step: StepPlan | None, message: str, state: RunState) -> MappingError:
    where = f"step `{step.name}`" if step is not None else "response"
    return MappingError(
        f"mapping `{provider.mapping.file}`, operation `{op.name}`, {where}: {message}",
        request_accepted=state.sent,
        details={"mapping": provider.mapping.file, "operation": op.name, "step": step.name if step else None},
    )


def _skipped(step: StepPlan) -> dict[str, Any]:
    result: dict[str, Any] = {name: None for name, _ in step.extract}
    result["response"] = None
    return result


def _search(expr: Any, body: Any) -> Any:
    """For conditions (`match`, `success`, `details`): an expression that fails is not true."""
    try:
        return expressions.search(expr, body)
    except expressions.ExpressionError:
        return None


def _truthy(value: Any) -> bool:
    # JMESPath truthiness: empty list/object/string, false and null are false; 0 is true.
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


_NOT_IN_A_HEADER = re.compile(r"[^\x20-\x7e]")  # non-ASCII, or a control character (tab included)


def _header_value(name: str, value: Any) -> str:
    text = _scalar(value)
    if _NOT_IN_A_HEADER.search(text) is not None:
        # e.g. a non-ASCII idempotence key: fit it with `fit_key(n, 'A-Za-z0-9_-')`, which hashes it
        raise BodyError(f"header `{name}` renders to a value with non-ASCII or control characters")
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
