"""OpenTelemetry tracing of one app: server spans, sidecar calls, events and workflow steps.

The provider is built in the composition root (create_service_app) and only starts exporting
in the lifespan, so importing an app starts no thread and opens no connection. It is never
installed as the global provider: each app (and each test) owns its own.

Trace context crosses every hop as W3C `traceparent`: Dapr continues the trace from the
header of our calls to the sidecar, and hands it back on the calls it makes to us (service
invocation, and pub/sub deliveries, whose CloudEvent also carries the publisher's context).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)

from kaya787_kit.json_logging import current_request_id, redact_text
from kaya787_kit.trace_context import W3C as _W3C
from kaya787_kit.trace_context import w3c_fields

DEFAULT_OTLP_ENDPOINT = "http://127.0.0.1:4318"
# Probes and scrapes every few seconds would drown the traces that matter.
UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics")
# Spans still queued at shutdown get this long to leave; a missing collector must not
# hold up a restart.
SHUTDOWN_FLUSH_SECONDS = 3.0

# Dapr reads and writes only W3C trace context, whatever OTEL_PROPAGATORS says.


class TracingConfigError(ValueError):
    """An OTEL_* setting this kit cannot honour; refused at startup rather than ignored."""


def sampler_from_env(environ: Mapping[str, str]) -> Sampler:
    """OTEL_TRACES_SAMPLER / _ARG, defaulting to parentbased_traceidratio at 1.0.

    Parent-based: a request Dapr sampled is traced here too and one Dapr did not (its
    samplingRate "0" sends no sampled parent) is not, so one switch turns a trace on or off
    end to end; the ratio only decides for spans that start a trace here.
    """
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_traceidratio").strip().lower()
    fixed: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
    }
    if name in fixed:
        return fixed[name]
    if name not in ("traceidratio", "parentbased_traceidratio"):
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER={name!r} is not a supported sampler")
    raw = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
    try:
        rate = float(raw)
    except ValueError as exc:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a number") from exc
    if not 0.0 <= rate <= 1.0:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not within [0, 1]")
    return TraceIdRatioBased(rate) if name == "traceidratio" else ParentBasedTraceIdRatio(rate)


def traces_endpoint(environ: Mapping[str, str]) -> str:
    """Where spans go, by the standard variables (the signal-specific one is used as is)."""
    specific = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_OTLP_ENDPOINT
    return base.rstrip("/") + "/v1/traces"


def _default_exporter(environ: Mapping[str, str]) -> SpanExporter:
    # Imported here: the exporter pulls in requests and protobuf, which a disabled or
    # test-only setup never needs. Headers, timeout and compression it reads from the
    # standard variables itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=traces_endpoint(environ))


class Tracing:
    """The tracer provider of one app, and the switch (OTEL_SDK_DISABLED) that removes it."""

    def __init__(
        self,
        service: str,
        *,
        exporter: SpanExporter | None = None,
        environ: Mapping[str, str] | None = None,
        flush_seconds: float = SHUTDOWN_FLUSH_SECONDS,
    ) -> None:
        env = os.environ if environ is None else environ
        self.service = service
        self._flush_seconds = flush_seconds
        self.enabled = env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"
        self._exporter = exporter
        self._environ = dict(env)
        self._started = False
        self._sdk: TracerProvider | None = None
        if self.enabled:
            resource = Resource.create({"service.name": service, "service.namespace": "kaya787"})
            self._sdk = TracerProvider(resource=resource, sampler=sampler_from_env(env))

    @property
    def provider(self) -> trace.TracerProvider:
        return self._sdk if self._sdk is not None else trace.NoOpTracerProvider()

    def tracer(self, name: str) -> trace.Tracer:
        return self.provider.get_tracer(name)

    def start(self) -> None:
        """Begin exporting (in the lifespan); batches leave on a background thread."""
        if self._sdk is None or self._started:
            return
        self._exporter = self._exporter or _default_exporter(self._environ)
        self._sdk.add_span_processor(BatchSpanProcessor(self._exporter))
        self._started = True

    def flush(self) -> bool:
        """Export what is queued, in this thread (blocks for as long as the export takes)."""
        return self._sdk.force_flush() if self._sdk is not None else True

    def shutdown(self) -> None:
        """Flush for at most `flush_seconds`, then stop; blocking, so not on a loop."""
        if self._sdk is None or not self._started:
            return
        # The SDK's flush ignores its timeout and, with the collector down, waits out the
        # exporter's whole retry schedule: flush on a thread of its own, and stop waiting.
        flusher = threading.Thread(target=self._sdk.force_flush, daemon=True)
        flusher.start()
        flusher.join(self._flush_seconds)
        if flusher.is_alive() and self._exporter is not None:
            self._exporter.shutdown()  # ends a retry still sleeping in the flusher
        self._sdk.shutdown()
        self._started = False

    def instrument_app(self, app: FastAPI) -> None:
        """A server span per request, continuing the caller's `traceparent`."""
        if self._sdk is None:
            return
        FastAPIInstrumentor.instrument_app(
            app,
            server_request_hook=_redact_query,
            tracer_provider=self._sdk,
            excluded_urls=",".join(f"{path}$" for path in UNTRACED_PATHS),
            # One span per request, not three: the ASGI send/receive spans say nothing here.
            exclude_spans=["receive", "send"],
        )

    def instrument_client(self, client: httpx.AsyncClient) -> None:
        """A client span per sidecar call and its `traceparent` on the request."""
        if self._sdk is None:
            return
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self._sdk)


def _redact_query(span: trace.Span, scope: dict[str, Any]) -> None:
    # The server span records the full URL, query included; spans are not logs, but they
    # are stored and searchable, so a `?token=` gets the same redaction as a log line.
    if not scope.get("query_string") or not span.is_recording():
        return
    for key in ("http.url", "url.full", "url.query"):
        value = (getattr(span, "attributes", None) or {}).get(key)
        if isinstance(value, str):
            span.set_attribute(key, redact_text(value))


def tracing_of(app: object) -> Tracing | None:
    """The app's tracing, if it was built by create_service_app."""
    found = getattr(getattr(app, "state", None), "tracing", None)
    return found if isinstance(found, Tracing) else None


REQUEST_ID_FIELD = "x-request-id"


def current_carrier() -> dict[str, str]:
    """The active trace context as W3C fields, to carry where headers do not go (workflows).

    The request id rides along, so the workflow's log lines name the request that started it.
    """
    carrier = w3c_fields()
    request_id = current_request_id.get()
    if request_id:
        carrier[REQUEST_ID_FIELD] = request_id
    return carrier


def context_from(carrier: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context a W3C carrier names; None (use the current one) when it names none."""
    if not carrier or not isinstance(carrier.get("traceparent"), str):
        return None
    extracted = _W3C.extract(dict(carrier))
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


def has_traceparent(headers: Mapping[str, str]) -> bool:
    return context_from({"traceparent": headers.get("traceparent", "")}) is not None


@contextmanager
def event_span(
    tracer: trace.Tracer,
    topic: str,
    event_id: str,
    headers: Mapping[str, str],
    event_carrier: Mapping[str, str],
) -> Iterator[trace.Span]:
    """The span of one pub/sub delivery, in the trace that published the event.

    Dapr 1.18 delivers over HTTP with a `traceparent` header naming its own "pubsub/<topic>"
    span (a child of the CloudEvent's `traceparent`/`traceid`); the server span already
    continues it, so this span nests under that. Without the header (tracing off in our
    sidecar, or a redelivery through another path) the CloudEvent's own context is the parent.
    """
    parent = None if has_traceparent(headers) else context_from(event_carrier)
    with tracer.start_as_current_span(
        f"{topic} process",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "dapr",
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.message.id": event_id,
        },
    ) as span:
        yield span


@contextmanager
def activity_span(
    tracer: trace.Tracer,
    name: str,
    carrier: Mapping[str, str] | None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """The span of one workflow activity, a child of the request that started the workflow.

    Activities run on the workflow worker's thread, where no request context exists; the
    workflow input carries it (see current_carrier), and this makes it current again so the
    activity's sidecar calls carry the same trace.
    """
    request_id = (carrier or {}).get(REQUEST_ID_FIELD)
    reset = current_request_id.set(request_id if isinstance(request_id, str) else None)
    try:
        with tracer.start_as_current_span(
            name,
            context=context_from(carrier),
            kind=trace.SpanKind.INTERNAL,
            attributes=dict(attributes or {}),
        ) as span:
            yield span
    finally:
        current_request_id.reset(reset)
