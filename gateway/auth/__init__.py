"""Upstream auth: how the gateway authenticates to a provider, one module per kind.

Each kind (``none``, ``header``, ``bearer``, ``basic``, ``oauth2``, ``hmac``) is one module
declaring its config type, the fields that name secrets, its templates, its load-time checks
and what it does to each request; ``kind`` says what a kind declares and how the phases use it:

- ``config.model`` takes the mapping file's ``auth`` union, :data:`UpstreamAuth`, from here;
- ``compile`` checks the secrets a kind names, compiles its templates into an
  :class:`AuthPlan` (on the mapping plan) and binds that to each provider's secrets and
  variables: :class:`Credentials` (on the provider plan);
- ``runtime`` asks the credentials for an :class:`Authenticator` per client and applies it to
  each request for the provider's own origin.

Adding a kind: a module like the others, one line in :data:`KINDS`, a row in the README's
"Upstream auth" table, and ``gateway schema`` to regenerate ``docs/schema``.
"""

from __future__ import annotations

from typing import Any, Union

from . import basic, bearer, header, hmac, none, oauth2
from .kind import (
    Authenticator,
    AuthError,
    AuthKind,
    AuthPlan,
    Credentials,
    Problem,
    Template,
)

# The kinds, in the order the JSON Schema lists them: one line each.
KINDS: tuple[AuthKind, ...] = (
    none.KIND,
    header.KIND,
    bearer.KIND,
    basic.KIND,
    oauth2.KIND,
    hmac.KIND,
)

if len({kind.tag for kind in KINDS}) != len(KINDS):
    raise RuntimeError("two upstream auth kinds share a `type`")

_BY_CONFIG: dict[type, AuthKind] = {kind.config: kind for kind in KINDS}

UpstreamAuth: Any = Union[tuple(kind.config for kind in KINDS)]  # a tagged union, on `type`
NoAuth = none.NoAuth  # the default


def kind_of(config: Any) -> AuthKind:
    """The kind of a loaded ``auth`` config."""
    return _BY_CONFIG[type(config)]


__all__ = [
    "KINDS", "AuthError", "AuthKind", "AuthPlan", "Authenticator", "Credentials", "NoAuth", "Problem",
    "Template", "UpstreamAuth", "kind_of",
]
