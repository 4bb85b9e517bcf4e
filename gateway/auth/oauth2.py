"""``type: oauth2``: OAuth2 client credentials.

One token per provider client, fetched on first use, cached until ``refresh_before`` seconds
before it expires, fetched once by however many requests need it at the same time (a lock),
and thrown away when the provider answers 401 (the request is then sent once more with a
fresh token). ``token_url`` is a template over ``vars``, rendered and checked (an absolute
http(s) URL) when a provider binds the mapping.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping

import httpx
import msgspec

from .. import diagnostics as rules
from ..config.base import Base
from ..config.secrets import Secret
from ..language.expressions import Compiled, ExpressionError, search
from ..language.templating import RenderError
from ..language.urls import is_absolute_http
from .kind import (
    Authenticator,
    AuthError,
    AuthKind,
    AuthPlan,
    Credentials,
    Problem,
    Template,
)


class OAuth2Auth(Base, tag="oauth2", tag_field="type"):
    """OAuth2 client credentials: a token fetched from ``token_url``, cached until shortly before
    it expires, shared by concurrent requests, and fetched again once if the provider says 401.

    ``token_url`` is a template over ``vars``; ``client_id`` and ``client_secret`` name secrets.
    The token goes in ``header`` as ``<scheme> <token>`` (``scheme: null``: the token alone).
    """

    token_url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    send_as: Literal["form", "json", "basic"] = "form"
    header: str = "Authorization"
    scheme: str | None = "Bearer"
    token_field: str = "access_token"
    expires_field: str = "expires_in"
    refresh_before: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 60.0


class _OAuth2(AuthKind):
    config = OAuth2Auth
    secret_fields = ("client_id", "client_secret")
    templates = (Template("token_url", ("vars",)),)

    def check(self, plan: AuthPlan, variables: Mapping[str, Any], file: str) -> list[Problem]:
        try:
            url = _token_url(plan, variables)
        except RenderError as exc:
            return [(rules.PROVIDER_BASE_URL, f"the auth token_url of `{file}` does not render: {exc.message}")]
        if not is_absolute_http(url):
            return [(rules.PROVIDER_BASE_URL, f"the auth token_url must be an absolute http(s) URL, got `{url}`")]
        return []

    def bind(self, plan: AuthPlan, secrets: Mapping[str, Secret], variables: Mapping[str, Any]) -> Credentials:
        config = plan.config
        assert isinstance(config, OAuth2Auth)
        return OAuth2Credentials(secrets=secrets, config=config, url=_token_url(plan, variables),
                                 client_id=secrets[config.client_id], client_secret=secrets[config.client_secret])


def _token_url(plan: AuthPlan, variables: Mapping[str, Any]) -> str:
    return str(plan.templates["token_url"].render({"vars": variables}))


@dataclass(frozen=True, kw_only=True)
class OAuth2Credentials(Credentials):
    config: OAuth2Auth
    url: str  # the token_url, rendered for this provider
    client_id: Secret
    client_secret: Secret

    def authenticator(self) -> Authenticator:
        return OAuth2Authenticator(self.config, self.url, self.client_id.reveal(), self.client_secret.reveal())

    @property
    def header_names(self) -> frozenset[str]:
        return frozenset({self.config.header})

    @property
    def token_url(self) -> str | None:
        return self.url


class OAuth2Authenticator(Authenticator):
    refreshable = True

    def __init__(self, spec: OAuth2Auth, token_url: str, client_id: str, client_secret: str) -> None:
        self.spec = spec
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._token_field = Compiled(spec.token_field)
        self._expires_field = Compiled(spec.expires_field)
        self.fetches = 0  # how many tokens were fetched (observable in tests)

    async def apply(self, request: httpx.Request, client: httpx.AsyncClient) -> None:
        token = await self._current(client)
        request.headers[self.spec.header] = f"{self.spec.scheme} {token}" if self.spec.scheme else token

    def invalidate(self) -> None:
        self._token = None

    async def _current(self, client: httpx.AsyncClient) -> str:
        if self._token is not None and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:  # one fetch, however many requests are waiting for it
            if self._token is not None and time.monotonic() < self._expires_at:
                return self._token
            self._token, lifetime = await self._fetch(client)
            self.fetches += 1
            self.fetched()
            self._expires_at = time.monotonic() + max(lifetime - self.spec.refresh_before, 0)
            return self._token

    async def _fetch(self, client: httpx.AsyncClient) -> tuple[str, float]:
        fields = {"grant_type": "client_credentials"}
        if self.spec.scope:
            fields["scope"] = self.spec.scope
        kwargs: dict[str, Any] = {}
        if self.spec.send_as == "basic":
            kwargs["auth"] = httpx.BasicAuth(self._client_id, self._client_secret)
            kwargs["data"] = fields
        elif self.spec.send_as == "json":
            kwargs["json"] = {**fields, "client_id": self._client_id, "client_secret": self._client_secret}
        else:
            kwargs["data"] = {**fields, "client_id": self._client_id, "client_secret": self._client_secret}
        try:
            response = await client.post(self.token_url, headers={"Accept": "application/json"}, **kwargs)
            body = msgspec.json.decode(response.content) if response.content else None
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            raise AuthError(f"the token request failed ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise AuthError(f"the token endpoint answered HTTP {response.status_code}")
        try:
            token = search(self._token_field, body)
            lifetime = search(self._expires_field, body)
        except ExpressionError:
            token = lifetime = None
        if not isinstance(token, str) or not token:
            raise AuthError(f"the token endpoint's answer has no `{self.spec.token_field}`")
        if isinstance(lifetime, str) and lifetime.isdigit():
            lifetime = int(lifetime)
        if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool):
            lifetime = 300  # no lifetime given: keep it 5 minutes, refresh on 401 anyway
        return token, float(lifetime)


KIND = _OAuth2()
