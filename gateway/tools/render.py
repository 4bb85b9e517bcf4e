"""``gateway render``: what a webhook would send, step by step, with secrets and PINs masked.

Without ``--send`` nothing leaves the machine: each step's request is rendered with earlier
steps' answers unknown. With ``--send`` the webhook runs for real against the provider and the
trace shows each request, the provider's answer, what was extracted, which error rule matched,
and NewStore's response.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, TextIO
from urllib.parse import parse_qsl

import msgspec

from .. import contracts
from ..language import jsonexact
from ..plan import GatewayPlan
from ..redact import Redactor, to_json
from ..runtime.engine import RunState, dry_run
from ..runtime.trace import (
    Answered,
    Attempted,
    Extracted,
    OutboundRequest,
    RuleMatched,
    Sent,
    Skipped,
)
from ..runtime.upstream.client import Upstream
from ..runtime.webhook import execute


class RenderUsageError(Exception):
    pass


def render(plan: GatewayPlan, provider_name: str, operation: str, body: bytes | None, *, send: bool,
           out: TextIO | None = None) -> int:
    out = out or sys.stdout  # looked up now, not at import: a captured or replaced stdout is honoured
    provider = plan.providers.get(provider_name)
    if provider is None:
        raise RenderUsageError(f"no provider `{provider_name}` in {plan.source}; it has: {', '.join(plan.providers)}")
    if operation not in contracts.OPERATIONS:
        raise RenderUsageError(f"no operation `{operation}`; NewStore's are: {', '.join(contracts.OPERATIONS)}")
    op = provider.mapping.operations.get(operation)
    if op is None or op.unsupported is not None:
        out.write(f"`{provider_name}` does not support `{operation}`: "
                  f"{op.unsupported if op else 'the mapping does not map it'}\n")
        return 0
    raw = body if body is not None else json.dumps(contracts.EXAMPLES[operation]).encode()
    try:
        request = contracts.decode_request(operation, raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise RenderUsageError(f"the request is not a valid `{operation}` request: {exc}") from None
    # Static credentials as sent (e.g. "Basic …") and the raw ones behind them and behind oauth2 / hmac.
    spec = contracts.OPERATIONS[operation]
    # A payment operation's instrument id travels in the URL; offline it is the body's own.
    path = {spec.path_param: getattr(request, "instrument_id", None) or "instrument-1"} if spec.path_param else {}
    secrets = [s.reveal() for s in provider.auth.masked()]
    redactor = Redactor.for_request(request, secrets)
    auth = {name: "***" for name in provider.auth.static_headers}
    mode = "sends it to the provider" if send else "dry run: nothing is sent"
    out.write(f"# {provider_name} {operation} ({mode}); card numbers, PINs and secrets are masked\n")
    if not send:
        for step, kind, detail in dry_run(provider, op, request, path=path):
            out.write(f"\nstep {step}\n")
            if isinstance(detail, OutboundRequest):
                _request(out, redactor, detail, auth)
            else:
                out.write(f"  ({redactor.text(str(detail))})\n")
        return 0
    return asyncio.run(_send(provider, op, request, redactor, auth, out, path))


async def _send(provider: Any, op: Any, request: Any, redactor: Redactor, auth: dict[str, str], out: TextIO,
                path: dict[str, Any]) -> int:
    state = RunState(trace=[])
    upstream = Upstream(provider)
    try:
        # The webhook's own path (deadline, payment checks, error bodies), without idempotency.
        answer = await execute(provider, upstream, op, request, path, state, time.monotonic() + provider.deadline, {})
    finally:
        await upstream.aclose()
    for event in state.trace or []:
        match event:
            case Sent(step, outbound):
                out.write(f"\nstep {step}\n")
                _request(out, redactor, outbound, auth)
            case Skipped(step):
                out.write(f"\nstep {step}\n  (skipped: its `if` is false)\n")
            case Answered(_, status, _, body):
                out.write(f"  -> HTTP {status}\n")
                out.write(f"  {_json(redactor, body)}\n")
            case RuleMatched(_, where, error_code):
                out.write(f"  error rule {where} matched -> {error_code}\n")
            case Attempted(_, attempt, attempts, error_code, retry_in, why):
                then = f"tried again in {retry_in:g}s" if retry_in is not None else "not tried again"
                out.write(f"  try {attempt} of {attempts} failed: {error_code} ({redactor.text(why)}); {then}\n")
            case Extracted(_, values):
                shown = ", ".join(f"{k}={_json(redactor, v, k)}" for k, v in values.items())
                out.write(f"  extracted: {shown or '(nothing)'}\n")
    out.write(f"\nNewStore gets HTTP {answer.status}\n  {_json(redactor, _decode(answer.body))}\n")
    return 0


def _request(out: TextIO, redactor: Redactor, outbound: OutboundRequest, auth: dict[str, str]) -> None:
    headers, content = outbound.headers, outbound.content
    query = redactor.query(outbound.params.items())
    out.write(f"  {outbound.method} {redactor.url(outbound.url)}{'?' + query if query else ''}\n")
    for name, value in sorted({**headers, **auth}.items(), key=lambda kv: kv[0].lower()):
        shown = redactor.data(value, name) if name not in auth else value
        out.write(f"  {name}: {shown}\n")
    if content:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if "x-www-form-urlencoded" in content_type.lower():
            fields = parse_qsl(content.decode("utf-8", errors="replace"), keep_blank_values=True)
            out.write(f"  {redactor.query(fields)}\n")
        else:
            out.write(f"  {_json(redactor, _decode(content))}\n")


def _decode(content: bytes | Any) -> Any:
    if not isinstance(content, (bytes, bytearray)):
        return content
    try:
        return jsonexact.decode(content)
    except msgspec.DecodeError:
        return content.decode("utf-8", errors="replace")


def _json(redactor: Redactor, value: Any, key: str = "") -> str:
    masked = redactor.data(value, key)
    if isinstance(masked, str) and not isinstance(value, (dict, list)) and not key:
        return masked
    return to_json(masked)
