"""OpenTelemetry tracing through the pipeline, with only the API as a dependency.

Each stage opens one span per event. The context travels in the CloudEvent
extensions ``traceparent`` / ``tracestate`` (so a trace survives the Redis
hop and the Knative hop alike) and in W3C headers on outgoing HTTP. Without
an SDK every call here is a cheap no-op. With ``opentelemetry-sdk``
installed and the standard ``OTEL_*`` variables set (for example
``OTEL_TRACES_EXPORTER=otlp``), ``configure_from_env`` turns tracing on;
``opentelemetry-instrument mutt ...`` works too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("mutt")
TRACE_EXTENSIONS = ("traceparent", "tracestate")


# The API looks this variable up in os.environ on every get_tracer_provider()
# call while no provider is set (~1 µs: 7% of the alert worker per event).
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def enabled() -> bool:
    """True once a real tracer provider (an SDK) is installed.

    Without one every span is a no-op, but opening it, extracting and
    injecting context still cost ~15 µs per event; the per-event helpers
    below skip all of it then. Reads the API's global directly (one
    attribute read) and asks the API only when it could load a provider
    named by the environment.
    """
    provider = trace._TRACER_PROVIDER  # set once by set_tracer_provider()
    if provider is None:
        if not _PROVIDER_FROM_ENV:
            return False
        provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider)


def span(
    name: str,
    context: Context | None = None,
    *,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, str | int] | None = None,
) -> AbstractContextManager[trace.Span]:
    """A stage span (the current span inside the block); a free no-op when tracing is off."""
    if not enabled():
        return nullcontext(trace.INVALID_SPAN)
    return tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes)


def context_from(carrier: Mapping[str, Any]) -> Context | None:
    """The trace context in CloudEvent attributes or HTTP headers (W3C keys)."""
    if not enabled():
        return None
    found = {k: str(carrier[k]) for k in TRACE_EXTENSIONS if carrier.get(k)}
    return propagate.extract(found)


def current_extensions() -> dict[str, str]:
    """``traceparent``/``tracestate`` of the current span, to put on an outgoing event."""
    if not enabled():
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k: v for k, v in carrier.items() if k in TRACE_EXTENSIONS}


def inject_headers(headers: MutableMapping[str, str]) -> None:
    """W3C trace headers on an outgoing HTTP request."""
    propagate.inject(headers)


def trace_id() -> str | None:
    """The current trace id (hex), for log lines."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


_configured = False


def configure_from_env() -> bool:
    """Install the SDK's tracer provider when the SDK is present and OTEL_* asks for it."""
    global _configured
    if _configured:
        return True
    wanted = os.environ.get("OTEL_TRACES_EXPORTER") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not wanted or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    try:
        from opentelemetry.sdk._configuration import _OTelSDKConfigurator
    except ImportError:
        log.warning("OTEL_* is set but opentelemetry-sdk is not installed: no traces")
        return False
    try:
        _OTelSDKConfigurator().configure()  # type: ignore[no-untyped-call]
    except Exception as exc:  # a bad exporter setting must not stop the pipeline
        log.warning("tracing not configured: %s", exc)
        return False
    _configured = True
    return True
