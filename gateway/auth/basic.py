"""``type: basic``: HTTP Basic authentication, computed once at load."""

from __future__ import annotations

import base64
from types import MappingProxyType
from typing import Any, Mapping

from ..config.base import Base
from ..config.secrets import Secret
from .kind import AuthKind, AuthPlan, Credentials, StaticHeaders


class BasicAuth(Base, tag="basic", tag_field="type"):
    """``Authorization: Basic base64(username:password)``; both name secrets."""

    username: str
    password: str


class _Basic(AuthKind):
    config = BasicAuth
    secret_fields = ("username", "password")

    def bind(self, plan: AuthPlan, secrets: Mapping[str, Secret], variables: Mapping[str, Any]) -> Credentials:
        config = plan.config
        assert isinstance(config, BasicAuth)
        pair = f"{secrets[config.username].reveal()}:{secrets[config.password].reveal()}".encode()
        headers = {"Authorization": Secret("Basic " + base64.b64encode(pair).decode())}
        return StaticHeaders(secrets=secrets, headers=MappingProxyType(headers))


KIND = _Basic()
