"""Load ``gateway.yaml`` and the mappings it names into one :class:`~gateway.plan.GatewayPlan`.

``load(path) -> (plan or None, diagnostics)`` is shared by ``serve`` and ``lint``: the plan is
``None`` whenever there is at least one error. With ``require_secrets=False`` (lint) a secret
that is not set is a warning instead of an error, since CI rarely has production secrets.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from .. import diagnostics as rules
from ..config import environment, model, reader
from ..config.reader import FileContext, display_path
from ..config.secrets import Secret, SecretUnavailable, resolve
from ..diagnostics import Diagnostic, errors, suggest
from ..language.templating import RenderError
from ..language.urls import is_absolute_http
from ..plan import (
    BreakerPlan,
    CompanionPlan,
    GatewayPlan,
    IdempotencyPlan,
    InboundPlan,
    MappingPlan,
    ProviderPlan,
)
from ..runtime import heap
from ..runtime.idempotency import registry as stores
from ..runtime.idempotency.crypto import decode_key
from .mapping import compile_mapping

_ROUTE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


# First path segments the gateway serves itself (gateway.http: health, openapi): a provider by
# one of these names would be shadowed by, or shadow, an operator endpoint.
RESERVED_ROUTE_NAMES = frozenset({"health", "livez", "readyz", "metrics", "schema"})


def is_route_name(name: str) -> bool:
    """A provider name that can be the first segment of NewStore's URL (``gateway new`` asks too)."""
    return _ROUTE_NAME.fullmatch(name) is not None


def load(path: str | Path, *, require_secrets: bool = True, eager: bool = True,
         mappings_read: set[Path] | None = None, keep: bool = False) -> tuple[GatewayPlan | None, list[Diagnostic]]:
    """Load gateway.yaml and its mappings; ``mappings_read`` collects the mapping files it read.

    ``require_secrets=False, eager=False`` is lint's mode: the same checks, secrets that are not
    set are warnings, and template code is generated on first use instead of now. The garbage
    collector is paused meanwhile, and with ``keep`` (a plan ``gateway serve`` starts with) what
    was loaded is frozen out of its scans before it comes back (runtime/heap.py says why).
    """
    with heap.paused(freeze=keep):
        return _load(path, require_secrets=require_secrets, eager=eager, mappings_read=mappings_read)


def _load(path: str | Path, *, require_secrets: bool, eager: bool,
          mappings_read: set[Path] | None) -> tuple[GatewayPlan | None, list[Diagnostic]]:
    path = Path(path).resolve()
    diagnostics: list[Diagnostic] = []
    ctx = reader.read(path, diagnostics)
    if ctx is None:
        return None, diagnostics
    environment.expand(ctx)  # ${VAR} and ${VAR:-default}, reported at their position
    raw = reader.convert(ctx, model.GatewayFile, hint="gateway.yaml needs a `providers:` mapping")
    if raw is None:
        return None, diagnostics
    mappings: dict[Path, MappingPlan | None] = {}
    providers: dict[str, ProviderPlan] = {}
    for name, entry in raw.providers.items():
        ppath = ("providers", name)
        if not is_route_name(name):
            ctx.report(ppath, rules.PROVIDER_NAME, at_key=True, message=f"provider name `{name}` must be lowercase letters, digits, `-` or `_` "
                                       "(it is the first segment of NewStore's URL)")
            continue
        if name in RESERVED_ROUTE_NAMES:
            ctx.report(ppath, rules.PROVIDER_NAME, at_key=True,
                       message=f"provider name `{name}` is reserved: the gateway serves /{name} itself; pick another "
                               f"name (reserved: {', '.join(sorted(RESERVED_ROUTE_NAMES))})")
            continue
        mapping_path = (ctx.base_dir / entry.mapping).resolve()
        if mapping_path not in mappings:
            mctx = reader.read(mapping_path, diagnostics, origin=(ctx, ppath + ("mapping",)))
            mappings[mapping_path] = compile_mapping(mctx, eager=eager) if mctx is not None else None
        if mappings_read is not None:
            mappings_read.add(mapping_path)
        mapping = mappings[mapping_path]
        if mapping is None:
            continue
        provider = _bind(ctx, name, entry, mapping, raw, require_secrets)
        if provider is not None:
            providers[name] = provider
    companions = tuple(
        CompanionPlan(c.name, tuple(c.command), c.ready_url, c.ready_timeout, str(ctx.base_dir))
        for c in raw.companions
    )
    idempotency = _idempotency(ctx, raw, require_secrets)
    drain_timeout = _drain_timeout(ctx, raw)
    if errors(diagnostics):
        return None, diagnostics
    plan = GatewayPlan(str(path), MappingProxyType(providers), raw.max_body_bytes, companions, idempotency,
                       drain_timeout)
    return plan, diagnostics


def load_mapping(path: str | Path, *, eager: bool = True) -> tuple[MappingPlan | None, list[Diagnostic]]:
    """Compile one mapping file on its own (lint of a mapping that no gateway.yaml names yet)."""
    diagnostics: list[Diagnostic] = []
    ctx = reader.read(Path(path).resolve(), diagnostics)
    plan = compile_mapping(ctx, eager=eager) if ctx is not None else None
    return (plan if not errors(diagnostics) else None), diagnostics


def _bind(ctx: FileContext, name: str, entry: model.ProviderEntry, mapping: MappingPlan,
          raw: model.GatewayFile, require_secrets: bool) -> ProviderPlan | None:
    """One mapping + one tenant's variables and secrets = one provider route."""
    ppath = ("providers", name)
    before = len(ctx.diagnostics)
    variables = _bind_vars(ctx, name, entry, mapping)
    secrets = _bind_secrets(ctx, name, entry, mapping, require_secrets)
    inbound = _bind_inbound(ctx, name, entry, require_secrets)
    base_url = ""
    try:
        base_url = str(mapping.base_url.render({"vars": variables})).rstrip("/")
    except RenderError as exc:
        ctx.report(ppath, rules.PROVIDER_BASE_URL, f"the base_url of `{mapping.file}` does not render for `{name}`: {exc.message}", at_key=True)
    if base_url and not is_absolute_http(base_url):
        ctx.report(ppath, rules.PROVIDER_BASE_URL, f"base_url for `{name}` must be an absolute http(s) URL, got `{base_url}`", at_key=True)
    elif base_url.startswith("http://") and not _is_loopback(base_url):
        ctx.report(ppath, rules.PROVIDER_INSECURE_BASE_URL, f"base_url for `{name}` is plain http to another machine; card numbers and "
                                   "credentials would travel unencrypted: use https", at_key=True)
    for rule, message in mapping.auth.check(variables, mapping.file):
        ctx.report(ppath, rule, message, at_key=True)
    if any(d.severity == "error" for d in ctx.diagnostics[before:]):
        return None
    return ProviderPlan(
        name=name,
        mapping=mapping,
        base_url=base_url,
        vars=MappingProxyType(variables),
        auth=mapping.auth.bind(MappingProxyType(secrets), variables),
        inbound=inbound,
        deadline=entry.deadline or raw.deadline,
        max_connections=entry.max_connections,
        breaker=BreakerPlan(entry.breaker.failures, entry.breaker.cooldown) if entry.breaker.enabled else None,
    )


def _idempotency(ctx: FileContext, raw: model.GatewayFile, require_secrets: bool) -> IdempotencyPlan | None:
    settings = raw.idempotency or model.IdempotencySettings()
    path = ("idempotency",)
    url = settings.store
    try:
        kind = stores.kind_of(url)
    except stores.UnknownStore as exc:
        ctx.report(path + ("store",), rules.IDEMPOTENCY_STORE, str(exc))
        return None
    keys: list[tuple[str, Secret]] = []
    for i, entry in enumerate(settings.encryption_keys):
        kpath = path + ("encryption_keys", i)
        if any(entry.id == other for other, _ in keys):
            ctx.report(kpath + ("id",), rules.IDEMPOTENCY_KEY, f"encryption key id `{entry.id}` is used twice; ids name keys in stored records")
            continue
        try:
            secret = resolve(entry.key, ctx.base_dir)
            decode_key(secret.reveal())
        except SecretUnavailable as exc:
            ctx.report(kpath + ("key",), rules.SECRET_UNSET, f"encryption key `{entry.id}`: {exc}",
                       severity="error" if require_secrets else "warning")
            continue
        except ValueError as exc:
            ctx.report(kpath + ("key",), rules.IDEMPOTENCY_KEY, f"encryption key `{entry.id}`: {exc}")
            continue
        keys.append((entry.id, secret))
    key_file = None
    if not settings.encryption_keys:
        if kind.shared:
            ctx.report(path + ("store",) if raw.idempotency else path, rules.IDEMPOTENCY_STORE,
                       "a store shared by several instances needs `encryption_keys` (the same keys on every "
                       "instance); a generated key file would differ from machine to machine")
            return None
        db = stores.sqlite_path(url, ctx.base_dir)
        key_file = str(ctx.base_dir / settings.key_file if settings.key_file else db.parent / "idempotency.key")
        if settings.key_file is None:
            ctx.report(path if raw.idempotency else (), rules.IDEMPOTENCY_DEFAULT_KEY,
                       f"no encryption key for stored responses is configured: one is generated into `{display_path(Path(key_file))}`. "
                       "Set idempotency.encryption_keys (or say key_file: explicitly) to choose",
                       at_key=raw.idempotency is not None)
    deadline = max((p.deadline or raw.deadline for p in raw.providers.values()), default=raw.deadline)
    if settings.lease is not None and settings.lease < deadline + 1:
        ctx.report(path + ("lease",), rules.IDEMPOTENCY_STORE,
                   f"the lease ({settings.lease:g}s) must outlast the longest webhook deadline ({deadline:g}s): "
                   "a request still running when its lease ends would let a duplicate run a second time")
        return None
    return IdempotencyPlan(
        store_url=url,
        base_dir=str(ctx.base_dir),
        retention=settings.retention,
        lease=settings.lease or deadline + 5,
        keys=tuple(keys),
        key_file=key_file,
        max_connections=settings.max_connections,
        where=_where(ctx, path + ("store",)),
    )


def _drain_timeout(ctx: FileContext, raw: model.GatewayFile) -> float:
    """Requests in flight when the server stops get this long; a shorter time than the longest
    deadline would cut off webhooks that are within their deadline (an unknown outcome)."""
    deadline = max((p.deadline or raw.deadline for p in raw.providers.values()), default=raw.deadline)
    if raw.drain_timeout is None:
        return deadline + 5
    if raw.drain_timeout < deadline:
        ctx.report(("drain_timeout",), rules.CONFIG_WRONG_TYPE,
                   f"drain_timeout ({raw.drain_timeout:g}s) must be at least the longest webhook deadline "
                   f"({deadline:g}s): stopping would cut off webhooks still within their deadline")
    return raw.drain_timeout


def _where(ctx: FileContext, path: tuple[str, ...]) -> str:
    line, col = ctx.located.position(path)
    return f"{ctx.file}:{line}:{col}"


def standalone_provider(name: str, mapping: MappingPlan, variables: dict[str, Any],
                        secrets: dict[str, str]) -> tuple[ProviderPlan | None, list[tuple[str, str]]]:
    """A provider for one mapping outside any gateway.yaml (``gateway test``, ``gateway new``):
    the given variables over the mapping's defaults, literal test secrets, no inbound key.
    Problems are ``(field, message)``, the field being ``vars`` or ``secrets``."""
    problems: list[tuple[str, str]] = []
    values = {**mapping.declared_vars, **variables}
    problems += [("vars", f"variable `{k}` needs a value (it has no default)") for k, v in values.items() if v is None]
    problems += [("secrets", f"secret `{k}` needs a test value") for k in mapping.declared_secrets if k not in secrets]
    if problems:
        return None, problems
    try:
        base_url = str(mapping.base_url.render({"vars": values})).rstrip("/")
    except RenderError as exc:
        return None, [("vars", f"base_url does not render: {exc.message}")]
    sealed = {k: Secret(v) for k, v in secrets.items()}
    try:  # the auth's load-time checks are not run here: a test case's answer tells
        credentials = mapping.auth.bind(MappingProxyType(sealed), values)
    except RenderError as exc:
        return None, [("vars", f"the auth of `{mapping.file}` does not render: {exc.message}")]
    provider = ProviderPlan(
        name=name, mapping=mapping, base_url=base_url, vars=MappingProxyType(values),
        auth=credentials, inbound=None, deadline=15.0, max_connections=10,
    )
    return provider, []


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind_vars(ctx: FileContext, name: str, entry: model.ProviderEntry, mapping: MappingPlan) -> dict[str, Any]:
    ppath = ("providers", name, "vars")
    declared = mapping.declared_vars
    for key in entry.vars:
        if key not in declared:
            tail = suggest(key, declared, f"it declares: {', '.join(declared) or 'none'}")
            ctx.report(ppath + (key,), rules.PROVIDER_VARS, f"`{mapping.file}` declares no variable `{key}`{tail}", at_key=True)
    values = {**declared, **entry.vars}
    for key, value in values.items():
        if value is None:
            ctx.report(ppath, rules.PROVIDER_VARS, f"variable `{key}` has no default in `{mapping.file}`; set providers.{name}.vars.{key}")
    return values


def _bind_secrets(ctx: FileContext, name: str, entry: model.ProviderEntry, mapping: MappingPlan,
                  require_secrets: bool) -> dict[str, Secret]:
    ppath = ("providers", name, "secrets")
    out: dict[str, Secret] = {}
    for key, ref in entry.secrets.items():
        if key not in mapping.declared_secrets:
            tail = suggest(key, mapping.declared_secrets, f"it declares: {', '.join(mapping.declared_secrets) or 'none'}")
            ctx.report(ppath + (key,), rules.PROVIDER_SECRETS, f"`{mapping.file}` declares no secret `{key}`{tail}", at_key=True)
            continue
        try:
            out[key] = resolve(ref, ctx.base_dir)
        except SecretUnavailable as exc:
            ctx.report(ppath + (key,), rules.SECRET_UNSET, f"secret `{key}` of `{name}`: {exc}",
                       severity="error" if require_secrets else "warning")
            out[key] = Secret("")
    for key in mapping.declared_secrets:
        if key not in entry.secrets:
            ctx.report(ppath if entry.secrets else ("providers", name), rules.PROVIDER_SECRETS,
                       f"`{mapping.file}` needs secret `{key}`; add providers.{name}.secrets.{key}: {{env: NAME}}",
                       at_key=True)
    return out


def _bind_inbound(ctx: FileContext, name: str, entry: model.ProviderEntry, require_secrets: bool) -> InboundPlan | None:
    if entry.inbound == "none":
        return None
    inbound = entry.inbound
    assert isinstance(inbound, model.InboundKey)
    try:
        key = resolve(inbound.key, ctx.base_dir).reveal()
    except SecretUnavailable as exc:
        ctx.report(("providers", name, "inbound", "key"), rules.SECRET_UNSET, f"inbound key of `{name}`: {exc}",
                   severity="error" if require_secrets else "warning")
        key = ""
    expected = f"{inbound.scheme} {key}" if inbound.scheme else key
    return InboundPlan(header=inbound.header, expected=Secret(expected))
