"""``type: bearer``: ``Authorization: Bearer <secret>``, computed once at load."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from ..config.base import Base
from ..config.secrets import Secret
from .kind import AuthKind, AuthPlan, Credentials, StaticHeaders


class BearerAuth(Base, tag="bearer", tag_field="type"):
    """``Authorization: Bearer <secret>``."""

    token: str


class _Bearer(AuthKind):
    config = BearerAuth
    secret_fields = ("token",)

    def bind(self, plan: AuthPlan, secrets: Mapping[str, Secret], variables: Mapping[str, Any]) -> Credentials:
        config = plan.config
        assert isinstance(config, BearerAuth)
        headers = {"Authorization": Secret("Bearer " + secrets[config.token].reveal())}
        return StaticHeaders(secrets=secrets, headers=MappingProxyType(headers))


KIND = _Bearer()
