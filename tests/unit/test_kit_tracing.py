"""Tracing in the kit: one trace across server spans, sidecar calls, events and workflow steps."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.pubsub import Subscriptions
from kaya787_kit.service_app import create_service_app
from kaya787_kit.settings import ServiceSettings
from kaya787_kit.sidecar import Sidecar, sidecar_http_client
from kaya787_kit.tracing import (
    Tracing,
    TracingConfigError,
    activity_span,
    current_carrier,
    sampler_from_env,
    traces_endpoint,
)
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

APP_TOKEN = "a" * 40
SETTINGS = ServiceSettings(
    app_id="demo", app_port=8000, dapr_api_token="d" * 40, app_api_token=APP_TOKEN
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
TOPIC = "demo.thing-happened.v1"


class FakeSidecar(Sidecar):
    """The kit's sidecar with its HTTP client on a mock transport: no daprd needed."""

    def __init__(self, tracing: Tracing, seen: list[httpx.Request]) -> None:
        super().__init__(SETTINGS, tracing)
        self._seen = seen
        self._mock: httpx.AsyncClient | None = None

    async def open(self) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            self._seen.append(request)
            return httpx.Response(200, json={"ok": True})

        self._mock = sidecar_http_client(
            SETTINGS, self._tracing, transport=httpx.MockTransport(answer)
        )

    @property
    def http(self) -> httpx.AsyncClient:
        assert self._mock is not None
        return self._mock

    async def close(self) -> None:
        if self._mock is not None:
            await self._mock.aclose()


def _tracing(environ: dict[str, str] | None = None) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Tracing("demo", exporter=exporter, environ=environ or {}), exporter


def _app(
    tracing: Tracing, seen: list[httpx.Request], handled: list[CloudEvent] | None = None
) -> FastAPI:
    router = APIRouter()

    @router.get("/api/v1/things/{thing_id}")
    async def thing(thing_id: str, request: Request) -> dict[str, Any]:
        sidecar: Sidecar = request.app.state.sidecar
        answer = await sidecar.http.get(f"/v1.0/invoke/other/method/things/{thing_id}")
        return dict(answer.json())

    async def on_event(event: CloudEvent) -> Delivery:
        if handled is not None:
            handled.append(event)
        return Delivery.SUCCESS

    subscriptions = Subscriptions("demo", "pubsub")
    subscriptions.add(TOPIC, on_event)
    return create_service_app(
        SETTINGS,
        title="demo",
        routers=[router, subscriptions.router()],
        sidecar=FakeSidecar(tracing, seen),
        tracing=tracing,
    )


@pytest.fixture
def traced() -> Iterator[tuple[TestClient, InMemorySpanExporter, Tracing, list[httpx.Request]]]:
    tracing, exporter = _tracing()
    seen: list[httpx.Request] = []
    with TestClient(_app(tracing, seen), headers={"dapr-api-token": APP_TOKEN}) as client:
        yield client, exporter, tracing, seen


def _finished(tracing: Tracing, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert tracing.flush()
    return list(exporter.get_finished_spans())


def _hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def _parent_hex(span: ReadableSpan) -> str | None:
    return None if span.parent is None else format(span.parent.span_id, "016x")


def _server(spans: list[ReadableSpan]) -> ReadableSpan:
    (server,) = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    return server


def test_server_span_continues_the_incoming_traceparent(traced: Any) -> None:
    client, exporter, tracing, _ = traced
    assert client.get("/api/v1/things/42", headers={"traceparent": TRACEPARENT}).status_code == 200
    server = _server(_finished(tracing, exporter))
    assert _hex_trace(server) == TRACE_ID
    assert _parent_hex(server) == PARENT_ID
    # The name is the route template, never the raw path with its id.
    assert server.name == "GET /api/v1/things/{thing_id}"
    assert server.resource.attributes["service.name"] == "demo"


def test_the_call_to_the_sidecar_carries_the_same_trace(traced: Any) -> None:
    client, exporter, tracing, seen = traced
    client.get("/api/v1/things/42", headers={"traceparent": TRACEPARENT, "x-request-id": "req-1"})
    (outgoing,) = seen
    version, trace_id, span_id, flags = outgoing.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    spans = _finished(tracing, exporter)
    (client_span,) = [s for s in spans if s.kind == trace.SpanKind.CLIENT]
    assert client_span.context is not None
    # Dapr continues from the client span, which is a child of the server span.
    assert format(client_span.context.span_id, "016x") == span_id
    server = _server(spans)
    assert server.context is not None
    assert client_span.parent is not None
    assert client_span.parent.span_id == server.context.span_id
    # The callee logs the same request id.
    assert outgoing.headers["x-request-id"] == "req-1"


def test_a_request_without_traceparent_starts_a_trace_of_its_own(traced: Any) -> None:
    client, exporter, tracing, seen = traced
    client.get("/api/v1/things/1")
    server = _server(_finished(tracing, exporter))
    assert server.parent is None
    assert seen[0].headers["traceparent"].split("-")[1] == _hex_trace(server)


def test_probes_and_scrapes_are_not_traced(traced: Any) -> None:
    client, exporter, tracing, _ = traced
    for path in ("/healthz", "/metrics"):
        assert client.get(path, headers={"traceparent": TRACEPARENT}).status_code == 200
    assert _finished(tracing, exporter) == []


def _event(**fields: Any) -> str:
    return json.dumps({"id": "e-1", "topic": TOPIC, "data": {"n": 1}, **fields})


def test_event_handler_span_joins_the_cloudevents_trace(traced: Any) -> None:
    client, exporter, tracing, _ = traced
    reply = client.post(
        "/events/demo-thing-happened-v1",
        content=_event(traceparent=TRACEPARENT, traceid=TRACEPARENT),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert reply.json() == {"status": "SUCCESS"}
    spans = _finished(tracing, exporter)
    (consumer,) = [s for s in spans if s.kind == trace.SpanKind.CONSUMER]
    assert _hex_trace(consumer) == TRACE_ID
    assert _parent_hex(consumer) == PARENT_ID
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.destination.name"] == TOPIC
    assert consumer.attributes["kaya787.delivery"] == "SUCCESS"


def test_event_with_only_the_older_traceid_field_joins_its_trace(traced: Any) -> None:
    client, exporter, tracing, _ = traced
    client.post("/events/demo-thing-happened-v1", content=_event(traceid=TRACEPARENT))
    (consumer,) = [s for s in _finished(tracing, exporter) if s.kind == trace.SpanKind.CONSUMER]
    assert _hex_trace(consumer) == TRACE_ID


def test_event_delivered_with_daprs_traceparent_header_nests_under_the_server_span(
    traced: Any,
) -> None:
    """Dapr's header names its own pubsub span (a child of the CloudEvent's context)."""
    client, exporter, tracing, _ = traced
    dapr_span = "1111111111111111"
    client.post(
        "/events/demo-thing-happened-v1",
        content=_event(traceparent=TRACEPARENT),
        headers={"traceparent": f"00-{TRACE_ID}-{dapr_span}-01"},
    )
    spans = _finished(tracing, exporter)
    server = _server(spans)
    (consumer,) = [s for s in spans if s.kind == trace.SpanKind.CONSUMER]
    assert _parent_hex(server) == dapr_span
    assert server.context is not None
    assert consumer.parent is not None
    assert consumer.parent.span_id == server.context.span_id
    assert {_hex_trace(server), _hex_trace(consumer)} == {TRACE_ID}


def test_a_failing_handler_marks_its_span_as_an_error() -> None:
    tracing, exporter = _tracing()

    async def broken(event: CloudEvent) -> Delivery:
        raise RuntimeError("boom")

    subscriptions = Subscriptions("demo", "pubsub")
    subscriptions.add(TOPIC, broken)
    app = create_service_app(
        SETTINGS,
        title="demo",
        routers=[subscriptions.router()],
        sidecar=FakeSidecar(tracing, []),
        tracing=tracing,
    )
    with TestClient(app, headers={"dapr-api-token": APP_TOKEN}) as client:
        reply = client.post("/events/demo-thing-happened-v1", content=_event())
    assert reply.json() == {"status": "RETRY"}
    (consumer,) = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.CONSUMER]
    assert consumer.status.status_code == trace.StatusCode.ERROR


def test_workflow_activity_span_joins_the_trace_carried_in_the_input() -> None:
    tracing, exporter = _tracing()
    tracing.start()
    tracer = tracing.tracer("test")
    with tracer.start_as_current_span("POST /api/v1/transfers") as request_span:
        carrier = current_carrier()
    # Later, on the worker's thread and loop: no request context there.
    seen: list[httpx.Request] = []

    async def activity() -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200)

        async with sidecar_http_client(
            SETTINGS, tracing, transport=httpx.MockTransport(answer)
        ) as http:
            with activity_span(tracer, "rail post hold", json.loads(json.dumps(carrier))):
                await http.post("/v1.0/invoke/accounts/method/internal/postings")

    asyncio.run(activity())
    tracing.shutdown()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    step = spans["rail post hold"]
    assert step.parent is not None
    assert step.parent.span_id == request_span.get_span_context().span_id
    assert seen[0].headers["traceparent"].split("-")[1] == format(
        request_span.get_span_context().trace_id, "032x"
    )


def test_activity_without_a_carrier_is_a_root_span() -> None:
    tracing, exporter = _tracing()
    tracing.start()
    with activity_span(tracing.tracer("test"), "rail finish", None):
        pass
    tracing.shutdown()
    (span,) = exporter.get_finished_spans()
    assert span.parent is None


def test_ratio_zero_traces_nothing_that_starts_here() -> None:
    """The benchmark's tracing-off switch: OTEL_TRACES_SAMPLER_ARG=0, Dapr samplingRate 0."""
    tracing, exporter = _tracing({"OTEL_TRACES_SAMPLER_ARG": "0"})
    seen: list[httpx.Request] = []
    with TestClient(_app(tracing, seen), headers={"dapr-api-token": APP_TOKEN}) as client:
        client.get("/api/v1/things/1")
        # An unsampled parent (what a sidecar that does not sample sends) stays unsampled.
        client.get("/api/v1/things/2", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})
    assert exporter.get_finished_spans() == ()
    assert seen[1].headers["traceparent"].endswith("-00")


def test_parent_based_sampling_follows_a_sampled_parent_even_at_ratio_zero() -> None:
    tracing, exporter = _tracing({"OTEL_TRACES_SAMPLER_ARG": "0"})
    with TestClient(_app(tracing, []), headers={"dapr-api-token": APP_TOKEN}) as client:
        client.get("/api/v1/things/1", headers={"traceparent": TRACEPARENT})
    assert {_hex_trace(s) for s in exporter.get_finished_spans()} == {TRACE_ID}


def test_sdk_disabled_means_no_spans_and_no_instrumentation() -> None:
    tracing, exporter = _tracing({"OTEL_SDK_DISABLED": "true"})
    assert not tracing.enabled
    assert isinstance(tracing.provider, trace.NoOpTracerProvider)
    seen: list[httpx.Request] = []
    with TestClient(_app(tracing, seen), headers={"dapr-api-token": APP_TOKEN}) as client:
        assert client.get("/api/v1/things/1", headers={"traceparent": TRACEPARENT}).is_success
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in seen[0].headers


@pytest.mark.parametrize(
    ("environ", "description"),
    [
        ({}, "ParentBased{root:TraceIdRatioBased{1.0}"),
        ({"OTEL_TRACES_SAMPLER_ARG": "0.25"}, "ParentBased{root:TraceIdRatioBased{0.25}"),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "AlwaysOffSampler"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
            "TraceIdRatioBased{0.5}",
        ),
    ],
)
def test_sampler_follows_the_standard_variables(environ: dict[str, str], description: str) -> None:
    assert sampler_from_env(environ).get_description().startswith(description)


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_SAMPLER": "sometimes"},
        {"OTEL_TRACES_SAMPLER_ARG": "half"},
        {"OTEL_TRACES_SAMPLER_ARG": "1.5"},
        {"OTEL_TRACES_SAMPLER_ARG": "-0.1"},
    ],
)
def test_a_sampler_setting_the_kit_cannot_honour_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(TracingConfigError):
        Tracing("demo", environ=environ)


def test_exporter_endpoint_defaults_to_loopback_and_follows_the_environment() -> None:
    assert traces_endpoint({}) == "http://127.0.0.1:4318/v1/traces"
    assert traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318/"}) == (
        "http://jaeger:4318/v1/traces"
    )
    assert (
        traces_endpoint(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/custom",
            }
        )
        == "http://other:4318/custom"
    )


def test_building_tracing_starts_no_export_until_the_lifespan() -> None:
    tracing, exporter = _tracing()
    with tracing.tracer("test").start_as_current_span("before start"):
        pass
    tracing.start()
    with tracing.tracer("test").start_as_current_span("after start"):
        pass
    # Shutdown flushes what is still queued in the batch processor.
    tracing.shutdown()
    assert [s.name for s in exporter.get_finished_spans()] == ["after start"]


class _StuckCollector(SpanExporter):
    """An export that hangs until shutdown, like the OTLP exporter retrying a dead collector."""

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.stopped.wait(30)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.stopped.set()


def test_shutdown_does_not_wait_for_a_collector_that_is_down() -> None:
    exporter = _StuckCollector()
    tracing = Tracing("demo", exporter=exporter, environ={}, flush_seconds=0.2)
    tracing.start()
    with tracing.tracer("test").start_as_current_span("queued"):
        pass
    started = time.monotonic()
    tracing.shutdown()
    assert time.monotonic() - started < 5
    assert exporter.stopped.is_set()


def test_credentials_in_a_query_string_are_redacted_in_the_server_span(traced: Any) -> None:
    client, exporter, tracing, _ = traced
    client.get("/api/v1/things/1?token=SECRET123&page=2")
    server = _server(_finished(tracing, exporter))
    assert server.attributes is not None
    recorded = json.dumps(dict(server.attributes))
    assert "SECRET123" not in recorded
    assert "page=2" in recorded
