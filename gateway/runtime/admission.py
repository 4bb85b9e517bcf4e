"""The webhook's way in: inbound API key, content type, body size, decoding and validation.

Everything here happens before any provider call; each failure is a 4xx with the spec's Error
body and ``request_accepted: false``.
"""

from __future__ import annotations

import hmac

import msgspec

from .. import contracts
from ..errors import RequestRejected, Unauthorized, UnsupportedMediaType
from ..plan import ProviderPlan


def authenticate(provider: ProviderPlan, headers: dict[str, str] | object) -> None:
    inbound = provider.inbound
    if inbound is None:  # the provider entry says `inbound: none` explicitly
        return
    value = headers.get(inbound.header)  # type: ignore[attr-defined]
    if not value:
        raise Unauthorized(f"missing `{inbound.header}` header with the API key for provider `{provider.name}`")
    if not hmac.compare_digest(value.encode(), inbound.expected.reveal().encode()):
        raise Unauthorized(f"invalid API key for provider `{provider.name}`")


def check_content_type(content_type: str | None) -> None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        shown = media or "none"
        raise UnsupportedMediaType(f"expected `Content-Type: application/json`, got `{shown}`")


def decode(operation: str, body: bytes) -> msgspec.Struct:
    if not body.strip():
        raise RequestRejected("the request body is empty; expected a JSON object")
    try:
        decoded = contracts.decode_request(operation, body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if " - at `" not in message:
            message += " - at `$`"  # msgspec leaves the root path out; NewStore's operators want it
        raise RequestRejected(f"invalid `{operation}` request: {message}") from None
    except msgspec.DecodeError as exc:
        raise RequestRejected(f"malformed JSON: {exc}") from None
    except UnicodeDecodeError:
        raise RequestRejected("malformed JSON: the body is not UTF-8") from None
    except RecursionError:
        raise RequestRejected("malformed JSON: nested too deeply") from None
    return decoded
