"""Every app's /metrics: RED per route template, pub/sub outcomes and delay, the app's KPIs."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.metrics import AppMetrics
from kaya787_kit.pubsub import Subscriptions
from kaya787_kit.service_app import create_service_app, start_metrics_listener
from kaya787_kit.settings import ServiceSettings
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.tracing import Tracing
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

APP_TOKEN = "a" * 40
SETTINGS = ServiceSettings(
    app_id="demo", app_port=8000, dapr_api_token="d" * 40, app_api_token=APP_TOKEN
)
TOPIC = "demo.thing-happened.v1"
PROMTOOL = "/usr/bin/promtool"


class IdleSidecar(Sidecar):
    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass


def _app(kpi: Counter | None = None) -> FastAPI:
    router = APIRouter()

    @router.get("/api/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    outcomes = iter([Delivery.SUCCESS, Delivery.RETRY])

    async def on_event(event: CloudEvent) -> Delivery:
        outcome = next(outcomes, Delivery.SUCCESS)
        if outcome is Delivery.RETRY:
            raise RuntimeError("store down")
        return outcome

    subscriptions = Subscriptions("demo", "pubsub")
    subscriptions.add(TOPIC, on_event)
    tracing = Tracing("demo", environ={"OTEL_SDK_DISABLED": "true"})
    return create_service_app(
        SETTINGS,
        title="demo",
        routers=[router, subscriptions.router()],
        sidecar=IdleSidecar(SETTINGS, tracing),
        tracing=tracing,
        collectors=[kpi] if kpi is not None else (),
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(_app(), headers={"dapr-api-token": APP_TOKEN}) as client:
        yield client


def _samples(client: TestClient, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    page = client.get("/metrics")
    assert page.status_code == 200
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(page.text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _labels(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_requests_are_counted_by_route_template_never_raw_path(client: TestClient) -> None:
    for thing in ("1", "2", "3"):
        assert client.get(f"/api/v1/things/{thing}?secret=x").status_code == 200
    assert client.get("/no/such/path/123").status_code == 404
    counts = _samples(client, "kaya787_http_requests_total")
    template = "/api/v1/things/{thing_id}"
    assert counts[_labels(service="demo", method="GET", route=template, status="200")] == 3
    assert counts[_labels(service="demo", method="GET", route="other", status="404")] == 1
    page = client.get("/metrics").text
    assert "/api/v1/things/1" not in page
    assert "/no/such/path" not in page
    assert "secret" not in page


def test_durations_are_a_histogram_per_route(client: TestClient) -> None:
    client.get("/api/v1/things/1")
    counts = _samples(client, "kaya787_http_request_duration_seconds_count")
    key = _labels(service="demo", method="GET", route="/api/v1/things/{thing_id}")
    assert counts[key] == 1
    sums = _samples(client, "kaya787_http_request_duration_seconds_sum")
    assert sums[key] > 0


def test_requests_refused_by_the_token_check_are_counted(client: TestClient) -> None:
    assert client.get("/api/v1/things/1", headers={"dapr-api-token": "wrong"}).status_code == 401
    counts = _samples(client, "kaya787_http_requests_total")
    assert counts[_labels(service="demo", method="GET", route="other", status="401")] == 1


def test_metrics_page_passes_promtool(client: TestClient) -> None:
    client.get("/api/v1/things/1")
    client.post("/events/demo-thing-happened-v1", json={"id": "e-1"})
    page = client.get("/metrics")
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=page.text,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_does_catch_a_broken_page() -> None:
    """The check above can fail: promtool rejects a counter without the _total suffix."""
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input="# HELP x_requests x\n# TYPE x_requests counter\nx_requests 1\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert 'counter metrics should have "_total" suffix' in checked.stdout + checked.stderr


def test_events_are_counted_by_outcome_with_their_delay(client: TestClient) -> None:
    sent = (datetime.now(UTC) - timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    route = "/events/demo-thing-happened-v1"
    assert client.post(route, json={"id": "e-1", "time": sent}).json() == {"status": "SUCCESS"}
    assert client.post(route, json={"id": "e-2", "time": sent}).json() == {"status": "RETRY"}
    assert client.post(route, content=b"not json").json() == {"status": "DROP"}
    counts = _samples(client, "kaya787_events_processed_total")
    for outcome in ("success", "retry", "drop"):
        assert counts[_labels(service="demo", topic=TOPIC, outcome=outcome)] == 1, outcome
    delays = _samples(client, "kaya787_event_processing_delay_seconds_count")
    assert delays[_labels(service="demo", topic=TOPIC)] == 2
    sums = _samples(client, "kaya787_event_processing_delay_seconds_sum")
    assert sums[_labels(service="demo", topic=TOPIC)] >= 4.0


def test_an_event_without_a_time_has_no_delay_sample(client: TestClient) -> None:
    client.post("/events/demo-thing-happened-v1", json={"id": "e-1"})
    assert _samples(client, "kaya787_event_processing_delay_seconds_count") == {}


def test_the_apps_own_collectors_are_served_with_the_kits() -> None:
    kpi = Counter("kaya787_demo_things", "Things seen.", ["service"], registry=None)
    kpi.labels("demo").inc(7)
    with TestClient(_app(kpi), headers={"dapr-api-token": APP_TOKEN}) as client:
        assert _samples(client, "kaya787_demo_things_total") == {_labels(service="demo"): 7}


def test_each_app_has_its_own_registry() -> None:
    first, second = AppMetrics("one"), AppMetrics("two")
    first.observe_request("GET", "/x", 200, 0.1)
    assert b'service="one"' in first.exposition()
    assert b"kaya787_http_requests_total{" not in second.exposition()


def test_a_producer_clock_ahead_of_ours_counts_as_no_delay() -> None:
    metrics = AppMetrics("demo")
    ahead = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    metrics.observe_event(TOPIC, "SUCCESS", ahead)
    metrics.observe_event(TOPIC, "SUCCESS", "not a time")
    page = metrics.exposition().decode()
    assert (
        f'kaya787_event_processing_delay_seconds_count{{service="demo",topic="{TOPIC}"}} 1.0'
        in (page)
    )
    assert f'kaya787_event_processing_delay_seconds_sum{{service="demo",topic="{TOPIC}"}} 0.0' in (
        page
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_metrics_listener_serves_only_the_apps_metrics() -> None:
    app = _app()
    with TestClient(app, headers={"dapr-api-token": APP_TOKEN}) as client:
        client.get("/api/v1/things/1")
    settings = SETTINGS.model_copy(update={"metrics_port": _free_port()})
    server = start_metrics_listener(app, settings)
    assert server is not None
    try:
        base = f"http://127.0.0.1:{settings.metrics_port}"
        page = httpx.get(f"{base}/metrics", timeout=5)
        assert page.status_code == 200
        assert 'route="/api/v1/things/{thing_id}"' in page.text
        # The app's routes are not behind this port (no way around the sidecar): any path
        # answers the exposition, never the app's JSON.
        other = httpx.get(f"{base}/api/v1/things/1", timeout=5)
        assert other.headers["content-type"].startswith("text/plain")
        assert '{"id":"1"}' not in other.text
    finally:
        server.shutdown()
        server.server_close()


def test_no_metrics_listener_unless_asked() -> None:
    assert SETTINGS.metrics_port is None
    assert start_metrics_listener(_app(), SETTINGS) is None
