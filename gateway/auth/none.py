"""``type: none``, the default: no credentials are sent."""

from __future__ import annotations

from typing import Any, Mapping

from ..config.base import Base
from ..config.secrets import Secret
from .kind import AuthKind, AuthPlan, Credentials, StaticHeaders


class NoAuth(Base, tag="none", tag_field="type"):
    """No credentials are sent."""


class _None(AuthKind):
    config = NoAuth

    def bind(self, plan: AuthPlan, secrets: Mapping[str, Secret], variables: Mapping[str, Any]) -> Credentials:
        return StaticHeaders(secrets=secrets)


KIND = _None()
