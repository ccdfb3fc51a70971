"""Analytics HTTP routes over fakes: timeseries validation, scopes, the stream, the page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kaya787_analytics.dashboard import ASSETS
from kaya787_analytics.service import AnalyticsService

from tests.fakes.analytics import (
    NOW,
    FakeAggregateStore,
    analytics_settings,
    api_app,
    cloud_event,
    transaction,
)

READER = {"authorization": "Bearer reader"}
TIMESERIES = "/api/v1/analytics/timeseries"
STREAM = "/api/v1/analytics/stream"


async def _store_with_one_transfer() -> FakeAggregateStore:
    store = FakeAggregateStore()
    service = AnalyticsService(store, clock=lambda: NOW)
    await service.on_posting(cloud_event("c", transaction("t:completed")))
    return store


async def test_timeseries_is_one_point_per_minute_ending_now() -> None:
    client = TestClient(api_app(await _store_with_one_transfer()), headers=READER)
    response = client.get(TIMESERIES, params={"metric": "transfers_completed", "window": "5m"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metric"] == "transfers_completed"
    assert body["window_minutes"] == 5
    assert [p["minute"] for p in body["series"]] == [
        f"2026-12-01T10:{m}:00Z" for m in (26, 27, 28, 29, 30)
    ]
    assert [p["value"] for p in body["series"]] == [0, 0, 0, 0, 1]


async def test_timeseries_of_volume_and_latency() -> None:
    client = TestClient(api_app(await _store_with_one_transfer()), headers=READER)
    volume = client.get(TIMESERIES, params={"metric": "volume.USD", "window": "2"}).json()
    assert [p["value"] for p in volume["series"]] == [0, 1000]
    latency = client.get(
        TIMESERIES, params={"metric": "transfer_latency_p95_ms", "window": "2"}
    ).json()
    assert [p["value"] for p in latency["series"]] == [None, 500]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"metric": "bogus"}, "metric"),
        ({}, "metric"),
        ({"metric": "volume.usd"}, "metric"),
        ({"metric": "transfers_completed", "window": "0"}, "window"),
        ({"metric": "transfers_completed", "window": "25h"}, "window"),
        ({"metric": "transfers_completed", "window": "ten"}, "window"),
        ({"metric": "transfers_completed", "window": "-5m"}, "window"),
    ],
)
def test_bad_timeseries_queries_are_problems_listing_valid_values(
    params: dict[str, str], parameter: str
) -> None:
    store = FakeAggregateStore()
    response = TestClient(api_app(store)).get(TIMESERIES, params=params, headers=READER)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == f"invalid_{parameter}"
    assert body["parameter"] == parameter
    if parameter == "metric":
        assert "transfers_completed" in body["valid"]
        assert any(v.startswith("volume.") for v in body["valid"])
    else:
        assert "1..1440" in body["valid"][0]
    assert store.loads == 0  # refused before any I/O


@pytest.mark.parametrize("path", ["/api/v1/analytics/overview", TIMESERIES, STREAM])
def test_analytics_routes_need_a_token_with_analytics_read(path: str) -> None:
    client = TestClient(api_app(FakeAggregateStore()))
    params = {"metric": "transfers_completed"}
    assert client.get(path, params=params).status_code == 401
    assert (
        client.get(path, params=params, headers={"authorization": "Bearer bad"}).status_code == 401
    )
    wrong_scope = client.get(path, params=params, headers={"authorization": "Bearer other"})
    assert wrong_scope.status_code == 403
    assert wrong_scope.json()["code"] == "insufficient_scope"


async def test_stream_sends_the_snapshot_then_ends_when_its_time_is_up() -> None:
    client = TestClient(api_app(await _store_with_one_transfer()))
    with client.stream("GET", STREAM, headers=READER) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        text = "".join(response.iter_text())
    assert "event: snapshot" in text
    assert '"transfers_completed":1' in text
    assert "event: heartbeat" in text
    assert text.rstrip().endswith('data: {"reason":"max_duration","reconnect":true}')


def test_page_and_assets_are_served_with_a_strict_policy() -> None:
    client = TestClient(api_app(FakeAggregateStore()))
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'data-testid="transfers-completed"' in page.text
    assert "<script>" not in page.text  # no inline code: the policy would refuse it
    for name in ASSETS:
        assert f'"/dashboard?asset={name}"' in page.text
        asset = client.get("/dashboard", params={"asset": name})
        assert asset.status_code == 200, (name, asset.text[:200])


@pytest.mark.parametrize(
    "name",
    [
        "package.json",
        "../package.json",
        "../../src/kaya787_analytics/settings.py",
        "src/index.html",
        "/etc/passwd",
        "",
    ],
)
def test_only_listed_assets_are_served(name: str) -> None:
    client = TestClient(api_app(FakeAggregateStore()))
    response = client.get("/dashboard", params={"asset": name})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_chart_library_not_installed_is_a_503_problem(tmp_path: Path) -> None:
    shutil.copytree(analytics_settings().dashboard_dir / "src", tmp_path / "src")
    client = TestClient(api_app(FakeAggregateStore(), dashboard_dir=tmp_path))
    assert client.get("/dashboard").status_code == 200
    missing = client.get("/dashboard", params={"asset": "uPlot.iife.min.js"})
    assert missing.status_code == 503
    assert missing.json()["code"] == "dashboard_asset_missing"
    assert "npm ci --prefix apps/analytics/dashboard" in missing.json()["detail"]
