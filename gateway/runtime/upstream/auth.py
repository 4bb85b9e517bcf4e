"""How the gateway authenticates to a provider, per request.

- static headers (``header``, ``bearer``, ``basic``): computed once at load;
- ``oauth2`` client credentials: one token per provider, fetched on first use, cached until
  ``refresh_before`` seconds before it expires, fetched once by however many requests need it
  at the same time (a lock), and thrown away when the provider answers 401 (the request is
  then sent once more with a fresh token);
- ``hmac``: a signature over chosen parts of each request, with a timestamp.

Credentials are applied only to requests for the provider's own origin (``client.Upstream``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import msgspec

from ...config import model
from ...language.expressions import Compiled, ExpressionError, search
from ...plan import ProviderPlan


class AuthError(Exception):
    """Credentials could not be obtained (the token endpoint failed); nothing else was sent."""


class Auth:
    refreshable = False

    async def apply(self, request: httpx.Request, client: httpx.AsyncClient) -> None:
        return None

    def invalidate(self) -> None:
        return None


class StaticAuth(Auth):
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.names = {name.lower() for name in headers}

    async def apply(self, request: httpx.Request, client: httpx.AsyncClient) -> None:
        for name, value in self.headers.items():
            request.headers[name] = value


class OAuth2Auth(Auth):
    refreshable = True

    def __init__(self, spec: model.OAuth2Auth, token_url: str, client_id: str, client_secret: str) -> None:
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


class HmacAuth(Auth):
    def __init__(self, spec: model.HmacAuth, message: Any, headers: Any, key: str, secret: str) -> None:
        self.spec = spec
        self._message = message
        self._headers = headers
        self._key = key
        self._secret = secret.encode()

    async def apply(self, request: httpx.Request, client: httpx.AsyncClient) -> None:
        now = time.time()
        timestamp = str(int(now * 1000)) if self.spec.timestamp == "ms" else str(int(now))
        try:
            body: Any = json.loads(request.content) if request.content else None
        except ValueError:
            body = request.content.decode("utf-8", errors="replace")
        message = str(self._message.render({
            "api_key": self._key, "method": request.method, "path": request.url.path,
            "query": request.url.query.decode(), "body": body, "timestamp": timestamp,
        }))
        digest = hmac.new(self._secret, message.encode(), getattr(hashlib, self.spec.algorithm)).digest()
        signature = digest.hex() if self.spec.encoding == "hex" else base64.b64encode(digest).decode()
        for name, value in self._headers.render({"api_key": self._key, "signature": signature,
                                                 "timestamp": timestamp}).items():
            request.headers[name] = str(value)


def for_provider(provider: ProviderPlan) -> Auth:
    spec = provider.mapping.auth_spec
    secrets = {k: v.reveal() for k, v in provider.auth_secrets.items()}
    if isinstance(spec, model.OAuth2Auth):
        assert provider.token_url is not None
        return OAuth2Auth(spec, provider.token_url, secrets[spec.client_id], secrets[spec.client_secret])
    if isinstance(spec, model.HmacAuth):
        values = provider.mapping.auth_values
        return HmacAuth(spec, values["message"], values["headers"], secrets[spec.key], secrets[spec.secret])
    return StaticAuth({name: secret.reveal() for name, secret in provider.auth_headers.items()})
