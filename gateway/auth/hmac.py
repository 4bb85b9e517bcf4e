"""``type: hmac``: a signature over chosen parts of each request, with a timestamp.

``message`` and ``headers`` are templates, compiled with the mapping and rendered per request
(``import hmac`` below is the standard library's: imports are absolute).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import httpx

from ..config.base import Base
from ..config.secrets import Secret
from ..language.templating import Value
from .kind import Authenticator, AuthKind, AuthPlan, Credentials, Template


class HmacAuth(Base, tag="hmac", tag_field="type"):
    """A signature over chosen parts of each request, with a timestamp.

    ``message`` is a template over ``api_key``, ``method``, ``path``, ``query``, ``body`` (the
    parsed JSON body) and ``timestamp``; its HMAC with the ``secret`` is ``signature``, and
    ``headers`` (templates over ``api_key``, ``signature``, ``timestamp``) are added.
    """

    key: str
    secret: str
    message: str
    headers: dict[str, str]
    algorithm: Literal["sha256", "sha512", "sha1"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    timestamp: Literal["ms", "s"] = "ms"


class _Hmac(AuthKind):
    config = HmacAuth
    secret_fields = ("key", "secret")
    templates = (
        Template("message", ("api_key", "method", "path", "query", "body", "timestamp")),
        Template("headers", ("api_key", "signature", "timestamp")),
    )

    def bind(self, plan: AuthPlan, secrets: Mapping[str, Secret], variables: Mapping[str, Any]) -> Credentials:
        config = plan.config
        assert isinstance(config, HmacAuth)
        return HmacCredentials(secrets=secrets, config=config, message=plan.templates["message"],
                               headers=plan.templates["headers"], key=secrets[config.key],
                               secret=secrets[config.secret])


@dataclass(frozen=True, kw_only=True)
class HmacCredentials(Credentials):
    config: HmacAuth
    message: Value
    headers: Value
    key: Secret
    secret: Secret

    def authenticator(self) -> Authenticator:
        return HmacAuthenticator(self.config, self.message, self.headers, self.key.reveal(), self.secret.reveal())

    @property
    def header_names(self) -> frozenset[str]:
        return frozenset(self.config.headers)


class HmacAuthenticator(Authenticator):
    def __init__(self, spec: HmacAuth, message: Value, headers: Value, key: str, secret: str) -> None:
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


KIND = _Hmac()
