"""OpenTelemetry traces, off unless the standard ``OTEL_*`` environment variables ask for them.

On when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``), or, unset, when
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set; off when
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. The rest is the SDK's own reading
of the environment (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_PROPAGATORS``).

Off, :data:`TRACER` is None: the request path checks that and nothing else, and no OpenTelemetry
module is imported (they come with the optional extra ``otel``). On, a webhook is a server span
(continuing an incoming ``traceparent``) and each provider call a client span whose context goes
upstream as ``traceparent``. Attributes are chosen fields only, passed through
:func:`gateway.logs.redact`: never bodies, card numbers, PINs or credentials, and a provider
URL only as its host and the mapping's path template (a path may carry a card number).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..logs import redact

if TYPE_CHECKING:  # pragma: no cover
    from opentelemetry.trace import Tracer

TRACER: Tracer | None = None
INSTRUMENTATION = "gateway"
SERVICE_NAME = "newstore-gift-card-gateway"
EXTRA_HINT = "pip install 'newstore-giftcard-gateway[otel]'"


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Do the ``OTEL_*`` variables ask for traces?"""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER")
    if exporter is not None:
        return exporter.strip().lower() not in ("", "none")
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def problem(env: Mapping[str, str] = os.environ) -> str | None:
    """Why the ``OTEL_*`` settings cannot work here (``gateway serve`` refuses to start), or None."""
    if not wanted(env):
        return None
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return f"the OTEL_* environment variables ask for traces, but OpenTelemetry is not installed: {EXTRA_HINT}"
    for name in _exporter_names(env):
        if name not in ("otlp", "console"):
            return f"OTEL_TRACES_EXPORTER: `{name}` is not an exporter this gateway ships; use otlp or console"
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if "otlp" in _exporter_names(env) and protocol != "http/protobuf":
        return f"OTEL_EXPORTER_OTLP_PROTOCOL `{protocol}`: this gateway exports OTLP over http/protobuf only"
    try:
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
    except ImportError:
        if "otlp" in _exporter_names(env):
            return f"the OTLP exporter is not installed: {EXTRA_HINT}"
    return None


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    return [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]


def configure_from_environment(env: Mapping[str, str] = os.environ) -> bool:
    """In each worker process: install a tracer provider if the environment asks for traces
    (``gateway serve`` checked :func:`problem` before starting). Returns whether tracing is on."""
    if not wanted(env) or problem(env) is not None:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; attributes given here
    # would override them, so the default service name is given only when they name none.
    given = {"service.version": version()}
    if not env.get("OTEL_SERVICE_NAME") and "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        given["service.name"] = SERVICE_NAME
    resource = Resource.create(given)
    provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER, parent-based by default
    for name in _exporter_names(env):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            import sys

            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            # One span per line on stderr, beside the log lines (the SDK's default is indented JSON on stdout).
            exporter = ConsoleSpanExporter(out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n")
            provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return True


def install(provider: Any | None) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``; tests pass one with an in-memory
    exporter), or stop tracing (None)."""
    global TRACER
    TRACER = provider.get_tracer(INSTRUMENTATION, version()) if provider is not None else None


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("newstore-giftcard-gateway")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout that was never installed
        return "0"


def attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes: None left out, text masked as log lines are."""
    return {k: redact(v) if isinstance(v, str) else v for k, v in values.items() if v is not None}


def server_span(tracer: Tracer, name: str, headers: Iterable[tuple[bytes, bytes]]) -> Any:
    """A server span continuing the caller's ``traceparent`` (if it sent one)."""
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    carrier = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
    parent = propagate.extract(carrier)
    return tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER,
                                        record_exception=False, set_status_on_exception=False)


def client_span(tracer: Tracer, name: str, attrs: Mapping[str, Any]) -> Any:
    from opentelemetry.trace import SpanKind

    return tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes(attrs),
                                        record_exception=False, set_status_on_exception=False)


def inject(headers: Any) -> None:
    """Write the current span's ``traceparent`` (and ``tracestate``) into outgoing ``headers``."""
    from opentelemetry import propagate

    propagate.inject(headers)


def finish(span: Any, attrs: Mapping[str, Any], *, error: str | None = None) -> None:
    """Set the final attributes; a failure marks the span as an error, named by its type only
    (an exception's message may quote request data)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attributes(attributes(attrs))
    if error is not None:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR))
