"""``type: header``: static headers whose values are secrets, computed once at load."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from ..config.base import Base
from ..config.secrets import Secret
from .kind import AuthKind, AuthPlan, Credentials, StaticHeaders


class HeaderAuth(Base, tag="header", tag_field="type"):
    """Static headers whose values are secrets: ``headers: {X-Api-Key: api_key}``.

    ``prefix`` is prepended to every value (``"Token "``).
    """

    headers: dict[str, str]
    prefix: str = ""


class _Header(AuthKind):
    config = HeaderAuth
    secret_fields = ("headers",)

    def bind(self, plan: AuthPlan, secrets: Mapping[str, Secret], variables: Mapping[str, Any]) -> Credentials:
        config = plan.config
        assert isinstance(config, HeaderAuth)
        headers = {name: Secret(config.prefix + secrets[secret].reveal()) for name, secret in config.headers.items()}
        return StaticHeaders(secrets=secrets, headers=MappingProxyType(headers))


KIND = _Header()
