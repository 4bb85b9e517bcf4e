"""What an upstream auth kind is, and what it declares for each phase.

An auth kind is one module of this package holding, in one place:

- ``config``: its config type, a Struct tagged by ``type`` (what integrators write,
  ``type: bearer``); ``gateway.auth`` makes the mapping file's ``auth`` union of them;
- ``secret_fields``: the fields that name secrets (a dict field: each of its values), checked
  at compile time against the mapping's ``secrets:``;
- ``templates``: the fields that are templates, each with the names it may read; ``compile``
  compiles them (as text) into the :class:`AuthPlan` of the mapping;
- ``check``: load-time checks, run when a provider binds the mapping to its variables;
- ``bind``: the plan bound to one provider's secrets and variables, immutable
  :class:`Credentials` on the provider plan; the request path asks them for an
  :class:`Authenticator` (per client) and calls its ``apply`` on each request.

The request path sees only ``Credentials`` and ``Authenticator``, never a config Struct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Iterator, Mapping

import httpx

from ..config.base import Base
from ..config.secrets import Secret
from ..config.yamlpos import KeyPath
from ..diagnostics import Rule
from ..language.templating import Value

Problem = tuple[Rule, str]  # a load-time check that failed: its rule and message


# --- compile time ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A field of a kind's config that is a template, rendered as text, and the names it may
    read (``vars`` only if listed: the mapping's variables, checked against its ``vars:``)."""

    field: str
    names: tuple[str, ...]


class AuthKind:
    """One upstream auth kind. Subclasses set the class attributes and override ``bind``
    (and ``check`` when binding can fail); a module's ``KIND`` is its one instance."""

    config: ClassVar[type[Base]]
    secret_fields: ClassVar[tuple[str, ...]] = ()
    templates: ClassVar[tuple[Template, ...]] = ()

    @property
    def tag(self) -> str:
        return str(self.config.__struct_config__.tag)

    def secret_refs(self, config: Any) -> Iterator[tuple[KeyPath, str]]:
        """Each secret the config names, with its path under ``auth``."""
        for name in self.secret_fields:
            value = getattr(config, name)
            if isinstance(value, dict):
                yield from (((name, key), secret) for key, secret in value.items())
            else:
                yield (name,), value

    def check(self, plan: AuthPlan, variables: Mapping[str, Any], file: str) -> list[Problem]:
        """Problems binding to these variables would have (``file``: the mapping's, for messages)."""
        return []

    def bind(self, plan: AuthPlan, secrets: Mapping[str, Secret], variables: Mapping[str, Any]) -> Credentials:
        """The credentials of one provider (its secrets resolved; ``check`` found nothing)."""
        raise NotImplementedError


@dataclass(frozen=True)
class AuthPlan:
    """A mapping's ``auth``, compiled: its kind, config and templates. No secrets yet: each
    provider that uses the mapping binds its own."""

    kind: AuthKind
    config: Base
    templates: Mapping[str, Value] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(secret for _, secret in self.kind.secret_refs(self.config))

    def check(self, variables: Mapping[str, Any], file: str) -> list[Problem]:
        return self.kind.check(self, variables, file)

    def bind(self, secrets: Mapping[str, Secret], variables: Mapping[str, Any]) -> Credentials:
        return self.kind.bind(self, secrets, variables)


# --- the request path -------------------------------------------------------------------------


class AuthError(Exception):
    """Credentials could not be obtained (the token endpoint failed); nothing else was sent."""


class Authenticator:
    """Authenticates the requests of one provider's client; it may keep state (a token).

    ``refreshable``: a 401 from the provider may mean stale credentials; the client then calls
    ``invalidate()`` and sends the request once more, through ``apply`` again.
    """

    refreshable = False

    def fetched(self) -> None:
        """Called after a new credential (a token) was fetched; the client sets it to count them."""
        return None

    async def apply(self, request: httpx.Request, client: httpx.AsyncClient) -> None:
        return None

    def invalidate(self) -> None:
        return None


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """An auth kind bound to one provider: immutable, carried by the provider plan.

    ``secrets`` are all the provider's secrets, masked wherever a request is shown.
    """

    secrets: Mapping[str, Secret]

    def authenticator(self) -> Authenticator:
        """A fresh authenticator for one client (state such as a cached token is per client)."""
        raise NotImplementedError

    @property
    def header_names(self) -> frozenset[str]:
        """The headers ``apply`` may set."""
        return frozenset()

    @property
    def static_headers(self) -> Mapping[str, Secret]:
        """Headers computed once at load and sent as they are (``render`` shows them as ``***``)."""
        return MappingProxyType({})

    @property
    def token_url(self) -> str | None:
        """A URL the kind itself calls to get credentials (oauth2's token endpoint)."""
        return None

    def masked(self) -> tuple[Secret, ...]:
        """Every value to mask: the static headers as sent, and the secrets behind everything."""
        return (*self.static_headers.values(), *self.secrets.values())


# --- static headers, shared by the kinds that need no request-time work ------------------------


class StaticAuthenticator(Authenticator):
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    async def apply(self, request: httpx.Request, client: httpx.AsyncClient) -> None:
        for name, value in self.headers.items():
            request.headers[name] = value


@dataclass(frozen=True, kw_only=True)
class StaticHeaders(Credentials):
    """Credentials that are headers computed once per provider, at load."""

    headers: Mapping[str, Secret] = field(default_factory=lambda: MappingProxyType({}))

    def authenticator(self) -> Authenticator:
        return StaticAuthenticator({name: secret.reveal() for name, secret in self.headers.items()})

    @property
    def header_names(self) -> frozenset[str]:
        return frozenset(self.headers)

    @property
    def static_headers(self) -> Mapping[str, Secret]:
        return self.headers
