"""Prometheus metrics of one app: RED per route, pub/sub outcomes and delay, the app's own KPIs.

Each app gets its own CollectorRegistry (built in create_service_app, never at import), so
two apps in one test process never share or collide on series.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kaya787_kit.timestamps import parse_time

METRICS_PATH = "/metrics"
# Requests that matched no route share one label value: raw paths would let any caller
# create series without bound (ids, scanners' guesses).
UNMATCHED_ROUTE = "other"

# Sub-millisecond to tens of seconds: app routes are fast; the saga's calls may queue.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Event delay includes broker queueing and redeliveries: up to minutes.
_DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class AppMetrics:
    """The series every app exposes, plus whatever collectors the app brings."""

    def __init__(self, service: str, collectors: Sequence[Collector] = ()) -> None:
        # In the text format every counter and histogram would get a `_created` gauge twin
        # that Prometheus stores as a series of its own; the flag is process-wide, and every
        # app process is built through here.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.service = service
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "kaya787_http_requests",
            "HTTP requests served, by matched route template and status code.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "kaya787_http_request_duration_seconds",
            "Time to serve an HTTP request, by matched route template.",
            ["service", "method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=self.registry,
        )
        self.events_processed = Counter(
            "kaya787_events_processed",
            "Pub/sub events handled, by topic and the answer given to the sidecar.",
            ["service", "topic", "outcome"],
            registry=self.registry,
        )
        self.event_delay = Histogram(
            "kaya787_event_processing_delay_seconds",
            "Time from an event's CloudEvent `time` until its handler finished.",
            ["service", "topic"],
            buckets=_DELAY_BUCKETS,
            registry=self.registry,
        )
        for collector in collectors:
            self.registry.register(collector)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(self.service, method, route, str(status)).inc()
        self.http_duration.labels(self.service, method, route).observe(seconds)

    def observe_event(self, topic: str, outcome: str, event_time: str | None) -> None:
        self.events_processed.labels(self.service, topic, outcome.lower()).inc()
        delay = _seconds_since(event_time)
        if delay is not None:
            self.event_delay.labels(self.service, topic).observe(delay)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _seconds_since(event_time: str | None) -> float | None:
    """Now minus an RFC 3339 time; None when absent or unparseable (the delay is unknown)."""
    sent = parse_time(event_time)
    if sent is None:
        return None
    # A producer's clock ahead of ours would give a negative delay; histograms refuse none,
    # but a negative bucket count would mislead: clamp.
    return max(0.0, (datetime.now(UTC) - sent).total_seconds())


def metrics_of(app: object) -> AppMetrics | None:
    """The app's metrics, if it was built by create_service_app (plain test apps have none)."""
    state = getattr(app, "state", None)
    found = getattr(state, "metrics", None)
    return found if isinstance(found, AppMetrics) else None


def route_template(scope: Scope) -> str:
    """The path template FastAPI matched (`/api/v1/accounts/{account_id}`), else "other"."""
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    return UNMATCHED_ROUTE


class RedMetricsMiddleware:
    """Counts and times every HTTP request by the route template it matched."""

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500  # if the app raises before answering, the server sends a 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_wrapper)
        finally:
            self._metrics.observe_request(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )


def install_metrics(app: FastAPI, metrics: AppMetrics) -> None:
    """Serve `GET /metrics` in the Prometheus text format and count every request."""
    app.state.metrics = metrics

    async def serve_metrics(request: Request) -> Response:
        # The classic text format every Prometheus (and promtool) reads; our names need
        # none of 1.0.0's UTF-8 escaping.
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    app.add_api_route(METRICS_PATH, serve_metrics, methods=["GET"], include_in_schema=False)
    app.add_middleware(RedMetricsMiddleware, metrics=metrics)
