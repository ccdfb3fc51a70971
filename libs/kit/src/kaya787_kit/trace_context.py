"""The active trace as W3C trace-context fields, with the OpenTelemetry API alone."""

from __future__ import annotations

from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

W3C = TraceContextTextMapPropagator()


def w3c_fields() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the active span; empty when nothing is traced."""
    carrier: dict[str, str] = {}
    W3C.inject(carrier)
    return carrier
