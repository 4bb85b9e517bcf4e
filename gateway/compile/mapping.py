"""Compile a mapping file into a :class:`~gateway.plan.MappingPlan`, reporting every problem.

This is the one place where YAML becomes runnable objects: every template and JMESPath
expression is compiled here, every cross-reference (step names, operations, declared secrets)
is checked here, and each problem becomes a diagnostic at the YAML line the user edits.
``serve`` and ``lint`` both go through it, so lint can never pass what serve rejects.
"""

from __future__ import annotations

import typing
from types import MappingProxyType
from typing import Any

import jmespath.exceptions
import msgspec

from .. import auth
from .. import diagnostics as rules
from ..config import model
from ..config.reader import FileContext, convert
from ..config.yamlpos import KeyPath, format_path
from ..contracts import CONTRACTS, OPERATIONS
from ..diagnostics import suggest
from ..language.expressions import FUNCTION_NAMES, Compiled
from ..language.statuses import StatusSpecError, parse_statuses
from ..language.templating import (
    CONTEXT_NAMES,
    ENV,
    REQUEST_ENV,
    XML_ENV,
    Const,
    DictValue,
    Expr,
    ListValue,
    TemplateCompileError,
    Value,
    Where,
    compile_string,
    is_template,
)
from ..language.urls import URL_ENV, UrlTemplate, compile_sources
from ..plan import (
    BodyPlan,
    ErrorRulePlan,
    MappingPlan,
    OperationPlan,
    RetryPlan,
    StepPlan,
)
from . import checks
from .references import Scope, fields, hints, reads

_BASE_NAMES = CONTEXT_NAMES
# Mapping-level templates (headers, shared error rules) run for every operation: any contract's names.
_ALL_NAMES = _BASE_NAMES + tuple(dict.fromkeys(n for c in CONTRACTS.values() for n in c.context_names))


def _names(operation: str) -> tuple[str, ...]:
    """What a template of ``operation`` can read: the common names and its contract's own."""
    return _BASE_NAMES + CONTRACTS[OPERATIONS[operation].contract].context_names
_RESERVED_EXTRACT = {"response"}


def compile_mapping(ctx: FileContext, *, eager: bool = True) -> MappingPlan | None:
    """Compile one mapping file. ``eager=False`` (lint) runs every check but defers generating
    template code to first use; ``serve`` compiles everything before it accepts a request."""
    raw = convert(ctx, model.MappingFile, hint="a mapping needs at least `base_url` and `operations`")
    if raw is None:
        return None
    return _Compiler(ctx, raw, eager).mapping()


class _Compiler:
    """Compiles one mapping file; every method may be called once it exists (``operation`` reads
    the file's variables and mapping-level rules, known from the start)."""

    def __init__(self, ctx: FileContext, raw: model.MappingFile, eager: bool) -> None:
        self.ctx = ctx
        self.file = ctx.file
        self.raw = raw
        self.eager = eager
        self.variables = frozenset(raw.vars)
        self.mapping_rules = raw.errors

    # -- helpers ---------------------------------------------------------------------------

    def where(self, path: KeyPath) -> Where:
        line, col = self.ctx.located.position(path)
        return Where(self.file, format_path(path), line, col)

    def value(self, raw: Any, path: KeyPath, scope: Scope, *, native: bool = True, env: Any = None,
              item: bool = False) -> Value:
        """Compile a YAML value whose string leaves may be templates reading ``scope``.

        ``item``: ``raw`` is a whole value of a mapping or an item of a list, the only places
        where a template may use ``omit`` (which leaves it out).
        """
        if isinstance(raw, str):
            if not is_template(raw):  # most strings of a mapping: no position to look up
                return Const(raw)
            kwargs = {"env": env} if env is not None else {}
            try:
                compiled = compile_string(raw, self.where(path), native=native, eager=self.eager, **kwargs)
            except TemplateCompileError as exc:
                self.ctx.report(path, exc.code, f"template error: {exc.message}", line_offset=exc.line)
                return Const(None)
            if compiled.has_templates:
                free, found = reads(env or ENV, raw)
                for problem in scope.check(free, found):
                    self.ctx.report(path, problem.code, problem.message, line_offset=problem.lineno)
                if "omit" in free and not (item and isinstance(compiled, Expr)):
                    line = next((r.lineno for r in found if r.root == "omit"), 1)
                    self.ctx.report(path, rules.TEMPLATE_UNDEFINED_NAME, "template reads `omit`, which only a template that is exactly one "
                                    "`{{ expression }}` and the whole value of a field or list item may use "
                                    "(it leaves that field or item out); here it would have to become text",
                                    line_offset=line)
            return compiled
        if isinstance(raw, dict):
            items = tuple((str(k), self.value(v, path + (k,), scope, native=native, env=env, item=True))
                          for k, v in raw.items())
            if all(not v.has_templates for _, v in items):
                return Const({k: v.render({}) for k, v in items})
            return DictValue(items)
        if isinstance(raw, list):
            values = tuple(self.value(v, path + (i,), scope, native=native, env=env, item=True) for i, v in enumerate(raw))
            if all(not v.has_templates for v in values):
                return Const([v.render({}) for v in values])
            return ListValue(values)
        return Const(raw)

    def jmes(self, expr: str, path: KeyPath) -> Any:
        try:
            compiled = Compiled(expr)
        except jmespath.exceptions.ParseError as exc:
            pos = exc.lex_position if isinstance(getattr(exc, "lex_position", None), int) else 0
            detail = str(exc).splitlines()[0].removeprefix("Invalid jmespath expression: ").rstrip(":")
            self.ctx.report(path, rules.JMESPATH_SYNTAX, f"JMESPath syntax error at character {pos + 1} of `{expr}`: {detail}",
                            col_offset=pos, text=expr)
            return None
        except jmespath.exceptions.JMESPathError as exc:
            self.ctx.report(path, rules.JMESPATH_SYNTAX, f"JMESPath error: {exc}")
            return None
        for name in _function_names(compiled.parsed):
            if name not in FUNCTION_NAMES:
                self.ctx.report(path, rules.JMESPATH_UNKNOWN_FUNCTION,
                                f"JMESPath function `{name}()` does not exist{suggest(name, FUNCTION_NAMES)}")
                return None
        return compiled

    # -- mapping ---------------------------------------------------------------------------

    def mapping(self) -> MappingPlan | None:
        raw = self.raw
        before = len(self.ctx.diagnostics)
        declared_secrets = tuple(raw.secrets)
        auth_kind = auth.kind_of(raw.auth)
        for ref_path, secret in auth_kind.secret_refs(raw.auth):
            if secret not in declared_secrets:
                self.ctx.report(("auth",) + ref_path, rules.PROVIDER_SECRETS,
                                f"auth uses secret `{secret}`, which the mapping does not declare; add it to `secrets:`")
        auth_plan = self._auth(auth_kind, raw.auth)
        base_url = self.value(raw.base_url, ("base_url",), Scope(("vars",), self.variables), native=False)
        mapping_scope = Scope(_ALL_NAMES, self.variables)
        headers = self.value(raw.headers, ("headers",), mapping_scope)
        checks.literal_secrets(self.ctx, raw.headers, ("headers",))
        self.default_retry = self.retry(raw.retry, ("retry",))
        errors = self.rules(raw.errors, ("errors",), mapping_scope)
        checks.mapping_rules_shadowed(self.ctx, raw.errors)
        operations: dict[str, OperationPlan] = {}
        for name, spec in raw.operations.items():
            path = ("operations", name)
            if name not in OPERATIONS:
                tail = suggest(name, OPERATIONS, f"NewStore's operations are: {', '.join(OPERATIONS)}")
                self.ctx.report(path, rules.MAPPING_UNKNOWN_OPERATION, f"unknown operation `{name}`{tail}", at_key=True)
                continue
            op = self.operation(name, spec, path)
            if op is not None:
                operations[name] = op
        served = {OPERATIONS[name].contract for name in raw.operations if name in OPERATIONS}
        for contract in CONTRACTS.values():
            if contract.name not in served:
                continue  # a mapping may serve gift cards only, or payments only
            for name in contract.operations:
                if name not in raw.operations:
                    self.ctx.report(("operations",), rules.MAPPING_OPERATION_MISSING,
                                    f"operation `{name}` ({contract.title}) is neither mapped nor declared "
                                    "`unsupported`; NewStore will get a 400 `unsupported_operation` for it",
                                    at_key=True)
        if any(d.severity == "error" for d in self.ctx.diagnostics[before:]):
            return None
        return MappingPlan(
            file=self.file,
            base_url=base_url,
            headers=headers,
            timeout=raw.timeout,
            max_response_bytes=raw.max_response_bytes,
            auth=auth_plan,
            errors=errors,
            operations=MappingProxyType(operations),
            declared_vars=MappingProxyType(dict(raw.vars)),
            declared_secrets=declared_secrets,
        )

    def _auth(self, kind: auth.AuthKind, raw: Any) -> auth.AuthPlan:
        """The auth kind's templates compiled (as text), each with the names its kind gives it."""
        templates = {t.field: self.value(getattr(raw, t.field), ("auth", t.field), Scope(t.names, self.variables),
                                         native=False)
                     for t in kind.templates}
        return auth.AuthPlan(kind, raw, MappingProxyType(templates))

    def operation(self, name: str, spec: model.OperationSpec, path: KeyPath) -> OperationPlan | None:
        if spec.unsupported is not None and (spec.steps or spec.response is not None):
            self.ctx.report(path, rules.MAPPING_OPERATION, f"operation `{name}` is declared `unsupported` but also has steps or a response; keep one")
            return None
        if spec.unsupported is None and not spec.steps and spec.response is None:
            self.ctx.report(path, rules.MAPPING_OPERATION, f"operation `{name}` has no `steps`; map it or declare it `unsupported: <reason>`")
            return None
        if spec.unsupported is not None:
            return OperationPlan(name, self.where(path), spec.unsupported, (), (), Const(None))
        errors_before = sum(d.severity == "error" for d in self.ctx.diagnostics)
        steps: list[StepPlan] = []
        visible: dict[str, tuple[str, ...]] = {}
        used: set[tuple[str, str]] = set()
        for i, step in enumerate(spec.steps):
            step_path = path + ("steps", i)
            if step.name in visible:
                self.ctx.report(step_path + ("name",), rules.MAPPING_STEP, f"step name `{step.name}` is used twice in `{name}`")
            later = frozenset(s.name for s in spec.steps[i:])
            scope = Scope(_names(name), self.variables, name, dict(visible), later, used)
            compiled = self.step(step, step_path, scope, name)
            if compiled is not None:
                steps.append(compiled)
            visible[step.name] = tuple(step.extract)
        all_steps = Scope(_names(name), self.variables, name, dict(visible), frozenset(), used)
        if spec.response is None and OPERATIONS[name].required:
            self.ctx.report(path, rules.MAPPING_RESPONSE, f"operation `{name}` has no `response`; NewStore requires {', '.join(OPERATIONS[name].required)}")
        else:
            self._check_response_shape(name, spec.response, path + ("response",))
        response = self.value(spec.response if spec.response is not None else {}, path + ("response",), all_steps)
        # An operation's rules may fire in its first step: their messages can read no step.
        no_steps = Scope(_names(name), self.variables, name, {}, frozenset(visible))
        operation_rules = self.rules(spec.errors, path + ("errors",), no_steps.with_response())
        self._check_error_codes(name, spec, path)
        if sum(d.severity == "error" for d in self.ctx.diagnostics) == errors_before:
            # A template that did not compile could not be searched for what it reads.
            checks.unused_extracts(self.ctx, spec, path, used)
        checks.shadowed_rules(self.ctx, spec, path, self.mapping_rules)
        return OperationPlan(name, self.where(path), None, tuple(steps), operation_rules, response, spec.retry_safe)

    def _check_error_codes(self, name: str, spec: model.OperationSpec, path: KeyPath) -> None:
        codes = CONTRACTS[OPERATIONS[name].contract].error_codes
        if codes is None:
            return
        located = [(path + ("errors", i), r) for i, r in enumerate(spec.errors)]
        located += [(path + ("steps", j, "errors", i), r) for j, step in enumerate(spec.steps)
                    for i, r in enumerate(step.errors)]
        for where, rule in located:
            if rule.error_code not in codes:
                tail = suggest(rule.error_code, codes, f"it has: {', '.join(codes)}")
                self.ctx.report(where + ("error_code",), rules.MAPPING_ERROR_CODE,
                                f"`{rule.error_code}` is not an error code of NewStore's Payment Provider Webhooks "
                                f"(`{name}`){tail}")

    def _check_response_shape(self, op: str, raw: Any, path: KeyPath) -> None:
        item_type = OPERATIONS[op].item_type
        if item_type is not None:  # a list of items (payment transactions)
            if isinstance(raw, list):
                for i, item in enumerate(raw):
                    _check_fields(self.ctx, item_type, item, path + (i,), op)
            elif isinstance(raw, dict):
                self.ctx.report(path, rules.MAPPING_RESPONSE, f"NewStore's `{op}` response is a list of transactions, not a mapping")
            return
        if not isinstance(raw, dict):
            return  # a whole-response template; checked when it renders
        for required in OPERATIONS[op].required:
            node: Any = raw
            for part in required.split("."):
                if isinstance(node, dict) and part in node:
                    node = node[part]
                elif isinstance(node, dict):
                    self.ctx.report(path, rules.MAPPING_RESPONSE, f"the `{op}` response lacks `{required}`, which NewStore requires")
                    break
                else:
                    break  # a template produces this part; checked when it renders
        _check_fields(self.ctx, OPERATIONS[op].response_type, raw, path, op)

    def step(self, step: model.Step, path: KeyPath, scope: Scope, operation: str) -> StepPlan | None:
        req = step.request
        rpath = path + ("request",)
        if (req.path is None) == (req.url is None):
            self.ctx.report(rpath, rules.MAPPING_STEP, f"step `{step.name}` needs exactly one of `path` (joined to base_url) or `url`")
            return None
        if req.path is not None and not req.path.startswith(("/", "{{", "{%")):
            self.ctx.report(rpath + ("path",), rules.MAPPING_STEP, "`path` must start with `/` (it is joined to the mapping's base_url)")
        kinds = [k for k in ("json", "form", "graphql", "text", "xml") if getattr(req, k) not in (None, msgspec.UNSET)]
        if len(kinds) > 1:
            self.ctx.report(rpath, rules.MAPPING_STEP, f"step `{step.name}` has several bodies ({', '.join(kinds)}); keep one")
            return None
        for name in step.extract:
            if name in _RESERVED_EXTRACT:
                self.ctx.report(path + ("extract", name), rules.MAPPING_STEP, f"`{name}` is reserved (steps.<name>.response holds the raw response); pick another name")
        target_raw = req.path if req.path is not None else req.url
        target_value = self.value(target_raw, rpath + ("path" if req.path is not None else "url",), scope,
                                  native=False, env=URL_ENV)
        try:
            sources = compile_sources(target_raw) if target_value.has_templates else ()
        except TemplateCompileError:
            sources = None  # already reported by value()
        target = UrlTemplate(target_value, req.path is not None, sources)
        body = self.body(req, kinds[0] if kinds else "none", rpath, scope)
        for part in ("headers", "query", "json", "form"):
            checks.literal_secrets(self.ctx, getattr(req, part), rpath + (part,))
        condition = None
        if isinstance(step.if_, bool):
            condition = Const(step.if_)
        elif step.if_ is not None:
            condition = self.value("{{ " + step.if_ + " }}", path + ("if",), scope)
        checks.never_runs(self.ctx, step, path)
        retry = self.retry(step.retry, path + ("retry",)) if step.retry is not None else self.default_retry
        checks.retry_settings(self.ctx, step, path, operation, retry is not None)
        return StepPlan(
            name=step.name,
            where=self.where(path),
            condition=condition,
            method=req.method,
            target=target,
            query=self.value(req.query, rpath + ("query",), scope, env=REQUEST_ENV),
            headers=self.value(req.headers, rpath + ("headers",), scope, env=REQUEST_ENV),
            body=body,
            timeout=req.timeout,
            parse=step.parse,
            success=self.jmes(step.success, path + ("success",)) if step.success else None,
            errors=self.rules(step.errors, path + ("errors",), scope.with_response()),
            extract=tuple((k, self.jmes(v, path + ("extract", k))) for k, v in step.extract.items()),
            retry=retry,
            idempotent=checks.is_idempotent(step, operation),
        )

    def retry(self, raw: model.Retry | None, path: KeyPath) -> RetryPlan | None:
        """A retry policy; None (one try) when there is none or it allows one try only."""
        if raw is None:
            return None
        if raw.max_backoff < raw.backoff:
            self.ctx.report(path + ("max_backoff",), rules.CONFIG_WRONG_TYPE,
                            f"`max_backoff` ({raw.max_backoff:g}s) is shorter than `backoff` ({raw.backoff:g}s), "
                            "the longest wait shorter than the first; raise it or lower `backoff`")
        return RetryPlan(raw.attempts, raw.backoff, raw.max_backoff) if raw.attempts > 1 else None

    def body(self, req: model.RequestSpec, kind: str, path: KeyPath, scope: Scope) -> BodyPlan:
        if kind == "none":
            return BodyPlan("none", None, None)
        if kind == "json":
            return BodyPlan("json", self.value(req.json, path + ("json",), scope, env=REQUEST_ENV),
                            req.content_type or "application/json")
        if kind == "form":
            return BodyPlan("form", self.value(req.form, path + ("form",), scope, env=REQUEST_ENV),
                            req.content_type or "application/x-www-form-urlencoded")
        if kind == "graphql":
            gql = req.graphql
            assert gql is not None
            raw: dict[str, Any] = {"query": gql.query}
            if gql.variables is not None:
                raw["variables"] = gql.variables
            if gql.operation_name:
                raw["operationName"] = gql.operation_name
            # The query text is GraphQL, not a template: only variables are rendered.
            value = DictValue((("query", Const(gql.query)),) + tuple(
                (k, self.value(v, path + ("graphql", "variables" if k == "variables" else k), scope, env=REQUEST_ENV))
                for k, v in raw.items() if k != "query"
            ))
            return BodyPlan("graphql", value, req.content_type or "application/json")
        if kind == "text":
            return BodyPlan("text", self.value(req.text, path + ("text",), scope, native=False, env=REQUEST_ENV),
                            req.content_type or "text/plain; charset=utf-8")
        return BodyPlan("xml", self.value(req.xml, path + ("xml",), scope, native=False, env=XML_ENV), req.content_type or "application/xml; charset=utf-8")

    def rules(self, specs: list[model.ErrorRule], path: KeyPath, scope: Scope) -> tuple[ErrorRulePlan, ...]:
        out = []
        for i, rule in enumerate(specs):
            rpath = path + (i,)
            if rule.status is None and rule.match is None:
                self.ctx.report(rpath, rules.MAPPING_RULE_MATCHES_EVERYTHING, "an error rule needs `status`, `match` or both; without them it would match every answer, successes included")
                continue
            statuses = self._statuses(rule.status, rpath + ("status",)) if rule.status is not None else None
            match = self.jmes(rule.match, rpath + ("match",)) if rule.match else None
            out.append(ErrorRulePlan(
                where=self.where(rpath),
                error_code=rule.error_code,
                message=self.value(rule.message, rpath + ("message",), scope.with_response(), native=False),
                statuses=statuses,
                match=match,
                accepted=rule.accepted,
                retry=rule.retry,
                details=tuple((k, self.jmes(v, rpath + ("details", k))) for k, v in rule.details.items()),
            ))
        return tuple(out)

    def _statuses(self, raw: int | str | list[int | str], path: KeyPath) -> frozenset[int] | None:
        try:
            return parse_statuses(raw)
        except StatusSpecError as exc:
            self.ctx.report(path, rules.CONFIG_WRONG_TYPE, str(exc))
            return None


def _check_fields(ctx: FileContext, type_: Any, raw: Any, path: KeyPath, op: str) -> None:
    """Report response keys that NewStore's response type does not have (typos)."""
    if not isinstance(raw, dict) or not (isinstance(type_, type) and issubclass(type_, msgspec.Struct)):
        return
    by_name = {f.encode_name: f for f in fields(type_)}
    type_hints = hints(type_)
    for key, value in raw.items():
        if key not in by_name:
            tail = suggest(key, by_name, f"it has: {', '.join(by_name)}")
            ctx.report(path + (key,), rules.MAPPING_RESPONSE, f"NewStore's `{op}` response has no field `{key}`{tail}")
            continue
        inner = type_hints.get(by_name[key].name)
        for arg in typing.get_args(inner) or (inner,):
            if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                _check_fields(ctx, arg, value, path + (key,), op)


def _function_names(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            out.append(node.get("value"))
        for child in node.get("children", []):
            out.extend(_function_names(child))
        if isinstance(node.get("value"), dict):
            out.extend(_function_names(node["value"]))
    return out
