"""Checks that find mappings which load but are probably wrong: warnings, mostly.

Each looks at the raw (typed) mapping and reports through the file's context; none changes
what the compiled plan does.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import nodes

from .. import diagnostics as rules
from ..config import model
from ..config.reader import FileContext
from ..config.yamlpos import KeyPath
from ..language.statuses import StatusSpecError, parse_statuses
from ..language.templating import TemplateCompileError, is_template, parse
from ..redact import secret_key

_SECRET_VALUE = re.compile(r"^(bearer|basic|token)\s+\S{8,}$|^(sk|pk|rk)_(live|test)_\w{8,}$", re.I)


def literal_secrets(ctx: FileContext, raw: Any, path: KeyPath) -> None:
    """Warn about a constant that looks like a credential written into a header or body."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            if isinstance(value, str) and not is_template(value) and _looks_secret(str(key), value):
                ctx.report(path + (key,), rules.SECRET_LITERAL,
                           f"`{key}` holds what looks like a credential written literally; declare it in "
                           "`secrets:` and send it with `auth`, so it comes from the environment")
            elif isinstance(value, (dict, list)):
                literal_secrets(ctx, value, path + (key,))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            literal_secrets(ctx, value, path + (i,))


def _looks_secret(key: str, value: str) -> bool:
    if _SECRET_VALUE.match(value.strip()):
        return True
    return secret_key(key) and len(value) >= 8 and " " not in value.strip()


def never_runs(ctx: FileContext, step: model.Step, path: KeyPath) -> None:
    """A step whose `if` is a constant false value is dead code (often a leftover from testing)."""
    if step.if_ is None or step.if_ is True:
        return
    if step.if_ is False:
        ctx.report(path + ("if",), rules.MAPPING_STEP_NEVER_RUNS, f"step `{step.name}` never runs: its `if` is always false")
        return
    try:
        tree = parse("{{ " + step.if_ + " }}").tree
    except TemplateCompileError:
        return
    body = tree.body[0] if len(tree.body) == 1 else None
    if isinstance(body, nodes.Output) and len(body.nodes) == 1:
        node = body.nodes[0]
        try:
            value = node.as_const()
        except nodes.Impossible:
            return
        if not value:
            ctx.report(path + ("if",), rules.MAPPING_STEP_NEVER_RUNS, f"step `{step.name}` never runs: its `if` is always false")


# Operations whose calls change a card or move money: repeating one may do it twice.
_READ_ONLY_OPERATIONS = frozenset({"balance"})
# A request that carries one of these sends the provider a key of its own: a repeat of the same
# rendered request (a retry resends the very bytes) is recognised by a provider that honours it.
_KEY_NAMES = re.compile(r"\b(idempotence_key|idempotency_key|webhook_id)\b")


def is_idempotent(step: model.Step, operation: str) -> bool:
    """Whether sending the step twice is harmless: the mapping says so, else a GET (HTTP's safe
    method) or any step of a read-only operation (balance) is, and nothing else."""
    if step.idempotent is not None:
        return step.idempotent
    return step.request.method == "GET" or operation in _READ_ONLY_OPERATIONS


def retry_settings(ctx: FileContext, step: model.Step, path: KeyPath, operation: str, has_retry: bool) -> None:
    """`idempotent` that cannot matter or is probably untrue (``rules.MAPPING_RETRY``)."""
    if step.idempotent is None:
        return
    if not has_retry:
        ctx.report(path + ("idempotent",), rules.MAPPING_RETRY,
                   f"`idempotent` of step `{step.name}` has no effect: it only decides which failures a retry "
                   "may repeat, and the step is tried once (no `retry` of its own nor the mapping's, or `attempts: 1`)")
        return
    if (step.idempotent and operation not in _READ_ONLY_OPERATIONS and step.request.method != "GET"
            and not _KEY_NAMES.search(_texts(step.request))):
        ctx.report(path + ("idempotent",), rules.MAPPING_RETRY,
                   f"step `{step.name}` is marked `idempotent` but sends no key the provider could recognise a "
                   f"repeat by: a retry after a timeout could {operation} twice. Send the provider an idempotency "
                   "key derived from NewStore's (`{{ idempotence_key | derive('...') }}`) or remove `idempotent: true`")


def _texts(raw: Any) -> str:
    """Every string of a request spec, keys included, as one text (to look for names in)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict):
        return " ".join(f"{k} {_texts(v)}" for k, v in raw.items())
    if isinstance(raw, (list, tuple)):
        return " ".join(_texts(v) for v in raw)
    if hasattr(raw, "__struct_fields__"):
        return " ".join(_texts(getattr(raw, f)) for f in raw.__struct_fields__)
    return ""


def unused_extracts(ctx: FileContext, spec: model.OperationSpec, path: KeyPath, used: set[tuple[str, str]]) -> None:
    for i, step in enumerate(spec.steps):
        for name in step.extract:
            if (step.name, name) not in used:
                ctx.report(path + ("steps", i, "extract", name), rules.MAPPING_UNUSED_EXTRACT,
                           f"step `{step.name}` extracts `{name}`, which nothing reads", at_key=True)


def shadowed_rules(ctx: FileContext, spec: model.OperationSpec, path: KeyPath, mapping_rules: list[model.ErrorRule]) -> None:
    """A rule that an earlier, broader rule always wins over can never match.

    Rules are tried step, then operation; a step's or operation's rule is checked against
    everything tried before it, and an operation's rule is reported only if it is shadowed for
    every step. Mapping-level rules are checked once, among themselves.
    """
    op_rules = [(path + ("errors", i), r) for i, r in enumerate(spec.errors)]
    verdicts: dict[KeyPath, list[str | None]] = {}
    for s, step in enumerate(spec.steps):
        own = [(path + ("steps", s, "errors", i), r) for i, r in enumerate(step.errors)]
        for rpath, why in _shadowed(ctx, own + op_rules).items():
            verdicts.setdefault(rpath, []).append(why)
    for rpath, whys in verdicts.items():
        if all(whys):
            target = rpath + ("match",) if whys[0] == _CONSTANT else rpath
            ctx.report(target, rules.MAPPING_RULE_NEVER_MATCHES, whys[0] or "")


def mapping_rules_shadowed(ctx: FileContext, mapping_rules: list[model.ErrorRule]) -> None:
    for rpath, why in _shadowed(ctx, [(("errors", i), r) for i, r in enumerate(mapping_rules)]).items():
        if why:
            ctx.report(rpath + ("match",) if why == _CONSTANT else rpath, rules.MAPPING_RULE_NEVER_MATCHES, why)


_CONSTANT = "this rule's `match` is a constant false value: it can never match"


def _shadowed(ctx: FileContext, sequence: list[tuple[KeyPath, model.ErrorRule]]) -> dict[KeyPath, str | None]:
    """For each rule of the sequence: why it can never match there, or None."""
    out: dict[KeyPath, str | None] = {}
    for j, (rpath, rule) in enumerate(sequence):
        why = None
        if _never(rule):
            why = _CONSTANT
        else:
            for earlier_path, earlier in sequence[:j]:
                if _covers(earlier, rule):
                    why = (f"this rule can never match: the rule at line {ctx.located.position(earlier_path)[0]} "
                           "matches every answer it would")
                    break
        out[rpath] = why
    return out


def _statuses(rule: model.ErrorRule) -> frozenset[int] | None:
    return None if rule.status is None else parse_statuses(rule.status)


def _covers(earlier: model.ErrorRule, later: model.ErrorRule) -> bool:
    if earlier.match is not None and earlier.match != later.match:
        return False
    try:
        a, b = _statuses(earlier), _statuses(later)
    except StatusSpecError:
        return False  # compile reports the spec (GW004); which rule wins is moot until it is fixed
    if a is None:
        return earlier.match is not None and earlier.match == later.match
    return b is not None and b <= a


def _never(rule: model.ErrorRule) -> bool:
    return rule.match is not None and rule.match.strip() in ("`false`", "`null`", "false", "null", "''", "`\"\"`", "`[]`", "`{}`")
