"""Every error the gateway raises, in one tree.

::

    GatewayError                      base; never reaches NewStore as such
    ├── ConfigError                   gateway.yaml or a mapping does not load (carries diagnostics)
    └── WebhookError                  answered to NewStore with the spec's Error body
        ├── RequestRejected           400  malformed/invalid webhook, unknown provider/operation,
        │                                  unsupported operation; request_accepted=false
        ├── RouteNotFound             404  / MethodNotAllowed 405 / PayloadTooLarge 413 /
        │                                  UnsupportedMediaType 415
        ├── Unauthorized              401  missing or wrong inbound API key
        ├── ProviderRejected          400  an error rule of the mapping matched: a definitive answer
        ├── ProviderThrottled         503  an error rule marked ``retry: true`` matched (rate limits)
        ├── UpstreamFailure           the provider did not give a usable answer
        │   ├── UpstreamUnreachable   502  connection refused/reset before the request was sent
        │   ├── UpstreamTimeout       504  a step's timeout ran out
        │   ├── DeadlineExceeded      504  the webhook's overall deadline ran out
        │   ├── ProviderUnavailable   503  the provider's circuit breaker is open; nothing sent
        │   └── UpstreamBadResponse   502  5xx, unparseable body, or an answer no rule explains
        │       └── UpstreamConnectionLost  the connection broke after the request went out
        ├── InProgress            503  a duplicate of a request still running (idempotency)
        ├── StoreUnavailable      503  the idempotency store did not answer in time; nothing sent
        ├── MappingError              502  the mapping rendered something invalid (names file and step)
        └── InternalError             500  a bug in the gateway; still the spec's Error body

``request_accepted`` follows the spec ("false when the request is rejected before being
processed by the provider"): the engine sets it to ``True`` as soon as any request of the
webhook may have reached the provider, because then the outcome is no longer known to be
"nothing happened". Errors are translated from httpx/msgspec/jinja at one boundary each
(``runtime.upstream.client``, ``runtime.admission``, ``language.templating``) with ``raise ... from exc``.

``definitive`` tells the idempotency layer whether the answer may be replayed for the same key:
successes and provider rejections are; unknown outcomes are not, so NewStore's retry runs again.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error raised on purpose by the gateway."""


class ConfigError(GatewayError):
    """The configuration does not load; ``diagnostics`` say where and why."""

    def __init__(self, diagnostics: list[Any]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class WebhookError(GatewayError):
    status: ClassVar[int] = 500
    error_code: ClassVar[str] = "internal_error"
    definitive: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        request_accepted: bool = False,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code
        self.request_accepted = request_accepted
        self.details = details

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "error_code": self.error_code,
            "message": self.message,
            "request_accepted": self.request_accepted,
        }
        if self.details:
            out["details"] = self.details
        return out


class RequestRejected(WebhookError):
    status = 400
    error_code = "invalid_request"


class RouteNotFound(WebhookError):
    status = 404
    error_code = "not_found"


class MethodNotAllowed(WebhookError):
    status = 405
    error_code = "method_not_allowed"


class PayloadTooLarge(WebhookError):
    status = 413
    error_code = "request_too_large"


class UnsupportedMediaType(WebhookError):
    status = 415
    error_code = "unsupported_media_type"


class Unauthorized(WebhookError):
    status = 401
    error_code = "unauthorized"


class ProviderRejected(WebhookError):
    """An error rule matched: its ``error_code`` is always the rule's (a rule must name one)."""

    status = 400
    error_code = "provider_rejected"  # what the webhook's log line calls the outcome
    definitive = True


class ProviderThrottled(WebhookError):
    """An error rule marked ``retry: true`` matched: the code is the rule's, as above."""

    status = 503
    error_code = "rate_limit"


class UpstreamFailure(WebhookError):
    """Never raised itself: catch it for "the provider gave no usable answer"."""

    status = 502
    error_code = "upstream_error"


class UpstreamUnreachable(UpstreamFailure):
    error_code = "provider_unreachable"


class UpstreamTimeout(UpstreamFailure):
    status = 504
    error_code = "provider_timeout"


class DeadlineExceeded(UpstreamFailure):
    status = 504
    error_code = "gateway_deadline_exceeded"


class UpstreamBadResponse(UpstreamFailure):
    error_code = "provider_bad_response"


class UpstreamConnectionLost(UpstreamBadResponse):
    """The connection broke after the request went out (reset, closed mid-answer): the provider
    may have acted. Told apart from an unreadable answer because it says the provider may be
    down (the circuit breaker counts it) and an idempotent step may be sent again."""


class ProviderUnavailable(UpstreamFailure):
    """The provider's circuit breaker is open: recent calls failed the way a provider that is
    down fails, so this one was not sent (``request_accepted`` false unless an earlier step was)."""

    status = 503
    error_code = "provider_unavailable"


class InProgress(WebhookError):
    """A request with the same idempotency key is still running (or its outcome is not stored yet)."""

    status = 503
    error_code = "request_in_progress"


class StoreUnavailable(WebhookError):
    """The idempotency store did not answer in time; nothing was sent to the provider."""

    status = 503
    error_code = "idempotency_unavailable"


class MappingError(WebhookError):
    status = 502
    error_code = "mapping_error"


class InternalError(WebhookError):
    status = 500
    error_code = "internal_error"
