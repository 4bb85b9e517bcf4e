"""Run mapping test cases offline, in-process, through the same app and engine as ``serve``.

The only thing swapped is the network: the provider's transport answers each step with the
case's canned response (the step's name travels in the request's extensions) and records what
the mapping sent. Failures say where (``file:line`` of the case) and show the first difference,
with card numbers, PINs and the test secrets masked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import msgspec
from litestar.testing import AsyncTestClient

from ... import contracts
from ... import diagnostics as rules
from ...compile.gateway_file import load_mapping, standalone_provider
from ...diagnostics import Diagnostic, errors
from ...http.app import create_app
from ...language import jsonexact
from ...plan import GatewayPlan
from ...redact import Redactor, to_json
from . import cases as case_files
from .compare import MISSING, describe, first_difference


@dataclass
class Outcome:
    file: str
    line: int
    name: str
    failure: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failure


class _Provider:
    """The swapped-in transport: canned answers out, sent requests recorded."""

    def __init__(self, token_url: str | None = None) -> None:
        self.token_url = token_url
        self.case: case_files.Case | None = None
        self.sent: dict[str, httpx.Request] = {}
        self.unanswered: list[str] = []

    def start(self, case: case_files.Case) -> None:
        self.case, self.sent, self.unanswered = case, {}, []

    def handle(self, request: httpx.Request) -> httpx.Response:
        step = request.extensions.get("gateway_step", "")
        request.read()
        if not step and self.token_url and str(request.url) == self.token_url:
            # The oauth2 auth kind fetching its token: cases are about steps, so answer it here.
            return httpx.Response(200, json={"access_token": "test-access-token", "expires_in": 3600}, request=request)
        self.sent[step] = request
        canned = self.case.provider.get(step) if self.case else None
        if canned is None:
            self.unanswered.append(step)
            raise httpx.ConnectError("no canned answer", request=request)
        if canned.fault == "timeout":
            raise httpx.ReadTimeout("canned timeout", request=request)
        if canned.fault == "unreachable":
            raise httpx.ConnectError("canned connection refused", request=request)
        if canned.fault == "reset":
            raise httpx.RemoteProtocolError("canned connection reset", request=request)
        headers = dict(canned.headers)
        if isinstance(canned.body, (dict, list)) or canned.body is None:
            content = b"" if canned.body is None else json.dumps(canned.body).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            content = str(canned.body).encode()
            headers.setdefault("Content-Type", "text/plain")
        return httpx.Response(canned.status, headers=headers, content=content, request=request)


async def run_file(path: Path) -> tuple[list[Outcome], list[Diagnostic]]:
    diagnostics: list[Diagnostic] = []
    loaded = case_files.load(path, diagnostics)
    if loaded is None:
        return [], diagnostics
    ctx, spec = loaded
    mapping_file = case_files.mapping_path(path, spec)
    mapping, found = load_mapping(mapping_file)
    diagnostics.extend(found)
    if mapping is None or errors(found):
        return [], diagnostics
    provider, problems = standalone_provider("test", mapping, dict(spec.vars), dict(spec.secrets))
    if provider is None:
        for field, problem in problems:
            ctx.report((field,), rules.PROVIDER_VARS if field == "vars" else rules.PROVIDER_SECRETS, problem)
        return [], diagnostics
    fake = _Provider(provider.auth.token_url)
    plan = GatewayPlan(str(path), {"test": provider}, 1 << 20)
    app = create_app(plan, transport_factory=lambda _p: httpx.MockTransport(fake.handle))
    outcomes = []
    async with AsyncTestClient(app) as client:
        for i, case in enumerate(spec.cases):
            line = ctx.located.position(("cases", i))[0]
            outcomes.append(await _run_case(client, fake, case, ctx.file, line, list(spec.secrets.values())))
    return outcomes, diagnostics


def _path(case: case_files.Case) -> str:
    spec = contracts.OPERATIONS.get(case.operation)
    if spec is None:  # NewStore's answer to an unknown operation is part of what a case may test
        return f"/test/gift_card/{case.operation}"
    params = {}
    if spec.path_param:
        fallback = case.request.get("instrument_id") if isinstance(case.request, dict) else None
        params[spec.path_param] = case.instrument_id or fallback or "instrument-1"
    return contracts.path_for(case.operation, "test", params)


async def _run_case(client: Any, fake: _Provider, case: case_files.Case, file: str, line: int,
                    secrets: list[str]) -> Outcome:
    outcome = Outcome(file, line, case.name)
    fake.start(case)
    body = case.request if isinstance(case.request, str) else json.dumps(case.request)
    headers = {"Content-Type": "application/json", **case.headers}
    response = await client.post(_path(case), content=body, headers=headers)
    request_struct = _request_struct(case)
    redactor = _redactor(case, request_struct, secrets)
    for step in fake.unanswered:
        outcome.failure.append(f"step `{step}` sent a request, but the case gives no `provider.{step}` answer")
    for step, expected in case.requests.items():
        problem = _check_request(step, expected, fake.sent.get(step))
        if problem:
            outcome.failure.extend(_show(problem, redactor))
            break
    if not outcome.failure:
        problem = _check_response(case.expect, response)
        if problem:
            outcome.failure.extend(_show(problem, redactor))
    return outcome


def _check_request(step: str, expected: case_files.ExpectedRequest, sent: httpx.Request | None) -> tuple | None:
    where = f"request of step `{step}`"
    if sent is None:
        return (where, "$", "a request", MISSING)
    if expected.method and expected.method.upper() != sent.method:
        return (where, "method", expected.method.upper(), sent.method)
    if expected.url and expected.url != str(sent.url):
        return (where, "url", expected.url, str(sent.url))
    for name, value in expected.headers.items():
        actual = sent.headers.get(name, MISSING)
        if actual != value:
            return (where, f"header {name}", value, actual)
    content = sent.content
    if expected.json is not msgspec.UNSET:
        try:
            actual_json = jsonexact.decode(content) if content else None
        except msgspec.DecodeError:
            return (where, "json body", expected.json, content.decode(errors="replace"))
        diff = first_difference(expected.json, actual_json, subset=expected.match == "subset")
        if diff:
            return (where, f"json body at {diff[0]}", diff[1], diff[2])
    if expected.form is not None:
        actual_form = dict(parse_qsl(content.decode(), keep_blank_values=True))
        diff = first_difference(expected.form, actual_form, subset=expected.match == "subset")
        if diff:
            return (where, f"form body at {diff[0]}", diff[1], diff[2])
    if expected.text is not None and expected.text != content.decode(errors="replace"):
        return (where, "body", expected.text, content.decode(errors="replace"))
    return None


def _check_response(expected: case_files.ExpectedResponse, response: httpx.Response) -> tuple | None:
    try:
        actual = jsonexact.decode(response.content)
    except msgspec.DecodeError:
        actual = response.text
    if expected.status != response.status_code:
        return ("response", "status", expected.status, response.status_code, actual)
    if expected.body is not msgspec.UNSET:
        diff = first_difference(expected.body, actual, subset=expected.match == "subset")
        if diff:
            return ("response", f"body at {diff[0]}", diff[1], diff[2], actual)
    return None


def _redactor(case: case_files.Case, request_struct: Any, secrets: list[str]) -> Redactor:
    """Masks the request's card number and PIN, the test secrets, and every card number or PIN
    the case itself names (expected requests and responses, canned answers), so that both sides
    of a difference are masked alike."""
    redactor = Redactor.for_request(request_struct, secrets)
    raw = case.request
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    redactor.learn(raw)
    for canned in case.provider.values():
        redactor.learn(canned.body)
        redactor.learn(canned.headers)
    for expected in case.requests.values():
        redactor.learn(expected.headers)
        redactor.learn(None if expected.json is msgspec.UNSET else expected.json)
        redactor.learn(expected.form)
    redactor.learn(None if case.expect.body is msgspec.UNSET else case.expect.body)
    return redactor


def _show(problem: tuple, redactor: Redactor) -> list[str]:
    where, what, expected, actual = problem[:4]
    lines = [f"{where}, {what}:", *describe(expected, actual, what, redactor)]
    if len(problem) > 4 and what != "body at $":
        lines.append(f"  (whole response: {_fmt(problem[4], redactor)})")
    return lines


def _fmt(value: Any, redactor: Redactor) -> str:
    if value is MISSING:
        return "(missing)"
    return to_json(redactor.data(value))


def _request_struct(case: case_files.Case) -> Any:
    raw = case.request.encode() if isinstance(case.request, str) else json.dumps(case.request).encode()
    try:
        return contracts.decode_request(case.operation, raw)
    except (msgspec.ValidationError, msgspec.DecodeError, KeyError, TypeError):
        return None


def summary(outcomes: list[Outcome], errors_count: int, seconds: float) -> str:
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    parts = [f"{passed} passed", f"{failed} failed"]
    if errors_count:
        parts.append(f"{errors_count} error{'s' * (errors_count != 1)}")
    return f"{', '.join(parts)} in {seconds:.2f}s"


def clock() -> float:
    return time.perf_counter()
