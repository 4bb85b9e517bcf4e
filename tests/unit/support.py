"""Helpers of the unit layer: mappings from text, an in-process provider, running an operation.

Nothing here opens a socket: a provider is an ASGI app (the sandbox simulator, or
:class:`ScriptedProvider`) reached through ``httpx.ASGITransport``, the same seam
``gateway.http.app.create_app(transport_factory=...)`` and ``gateway.runtime.upstream.client.Upstream`` take.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl

import httpx

from gateway import contracts as contract
from gateway.diagnostics import Diagnostic
from gateway.runtime.engine import RunState, run_operation
from gateway.errors import WebhookError
from gateway.compile.gateway_file import load_mapping, standalone_provider
from gateway.plan import MappingPlan, ProviderPlan
from gateway.runtime.upstream.client import Upstream

# A mapping's first lines for most tests: the operations follow.
HEAD = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: "https://provider.test/api", region: eu}
secrets: [token]
auth: {type: bearer, token: token}
"""
TOKEN = "unit-test-token"


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def diagnose(tmp_path: Path, text: str, name: str = "m.yaml") -> tuple[MappingPlan | None, list[Diagnostic]]:
    """Compile a mapping written as text: the plan (None on any error) and every diagnostic."""
    return load_mapping(write(tmp_path, text, name))


def compile_ok(tmp_path: Path, text: str) -> MappingPlan:
    plan, diagnostics = diagnose(tmp_path, text)
    assert plan is not None, "\n".join(map(str, diagnostics))
    return plan


def codes(diagnostics: list[Diagnostic], severity: str | None = None) -> list[str]:
    return [d.code for d in diagnostics if severity is None or d.severity == severity]


def provider_of(plan: MappingPlan, *, vars: Mapping[str, Any] | None = None,
                secrets: Mapping[str, str] | None = None, name: str = "p") -> ProviderPlan:
    wanted = {s: TOKEN for s in plan.declared_secrets} if secrets is None else dict(secrets)
    provider, problems = standalone_provider(name, plan, dict(vars or {}), wanted)
    assert provider is not None, problems
    return provider


# -- an in-process provider ------------------------------------------------------------------

@dataclass
class Call:
    method: str
    path: str  # percent-encoded, as it was sent
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode(), keep_blank_values=True)


Reply = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]


@dataclass
class ScriptedProvider:
    """A tiny ASGI provider: ``routes`` maps ``"METHOD /path"`` to a reply ``(status, body[, headers])``
    or to a function of the :class:`Call` returning one. A dict/list body is sent as JSON, bytes
    or str as they are. Every request is recorded in ``calls``; an unknown route is a 404."""

    routes: dict[str, Reply | Callable[[Call], Reply]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        # The path as sent (percent-encoded), not ASGI's decoded `path`.
        path = scope.get("raw_path", scope["path"].encode()).decode()
        call = Call(scope["method"], path, parse_qsl(scope["query_string"].decode(), keep_blank_values=True),
                    {k.decode().lower(): v.decode() for k, v in scope["headers"]}, body)
        self.calls.append(call)
        reply = self.routes.get(f"{call.method} {call.path}", (404, {"error": {"code": "no_route"}}))
        if callable(reply):
            reply = reply(call)
        status, content, headers = (*reply, {}) if len(reply) == 2 else reply  # type: ignore[misc]
        headers = dict(headers)
        if isinstance(content, (dict, list)):
            content = json.dumps(content).encode()
            headers.setdefault("content-type", "application/json")
        elif isinstance(content, str):
            content = content.encode()
        raw = [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
        raw.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})


# -- running one operation as the webhook would ----------------------------------------------

@dataclass
class Outcome:
    """What NewStore gets (status and decoded body) and what the run did."""

    status: int
    body: Any
    state: RunState
    error: WebhookError | None = None
    raw: bytes = b""  # the exact bytes NewStore gets

    @property
    def code(self) -> str | None:
        return self.body.get("error_code") if isinstance(self.body, dict) else None


class Failing(httpx.AsyncBaseTransport):
    """A transport whose every request fails with ``exc`` (no network, no waiting)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raise self.exc


def run(provider: ProviderPlan, app: Any, operation: str, request: Mapping[str, Any], *,
        path: Mapping[str, str] | None = None, trace: bool = False, now: Any = None) -> Outcome:
    """Decode ``request`` as NewStore's body for ``operation``, run the operation's steps against
    ``app`` in-process, and answer as the webhook would (the contract's error body on failure).
    ``app`` is an ASGI app, or an httpx transport used as it is (to raise transport errors)."""
    op = provider.mapping.operations[operation]
    decoded = contract.decode_request(operation, json.dumps(request).encode())
    state = RunState(trace=[] if trace else None)

    async def go() -> Outcome:
        transport = app if isinstance(app, httpx.AsyncBaseTransport) else httpx.ASGITransport(app=app)
        upstream = Upstream(provider, transport)
        try:
            result = await run_operation(provider, upstream, op, decoded, state, path=path, now=now)
            return Outcome(200, json.loads(result.body), state, raw=result.body)
        except WebhookError as exc:
            status, body = contract.contract_of(operation).error_answer(exc, op.retry_safe)
            raw = contract.encode(body)
            return Outcome(status, json.loads(raw), state, exc, raw)
        finally:
            await upstream.aclose()

    return asyncio.run(go())
