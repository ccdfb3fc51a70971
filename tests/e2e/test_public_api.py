"""A client's whole journey through the public API only, as in docs/api.md.

It talks to nothing but the gateway, so it also runs against a cluster
(KAYA787_E2E_TARGET=k8s, GATEWAY_URL=...), where the tests that drive local processes skip.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.users import PASSWORD, analyst, bearer, register_and_login

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if os.environ.get("KAYA787_E2E_TARGET") == "k8s":
        base = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
    else:
        request.getfixturevalue("platform")  # the local platform, started if needed
        base = "http://127.0.0.1:8080"
    with httpx.Client(base_url=base, timeout=20.0) as client:
        yield client


def _user(api: httpx.Client) -> dict[str, str]:
    _, issued = register_and_login(api, PASSWORD, prefix="e2e")
    return bearer(issued)


def _final(api: httpx.Client, transaction_id: str, who: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = api.get(f"/api/v1/transfers/{transaction_id}", headers=who).json()
        if body["status"] != "pending":
            return body
        time.sleep(0.3)
    raise AssertionError(f"{transaction_id} never finished")


def test_register_open_deposit_transfer_and_see_it_in_analytics(api: httpx.Client) -> None:
    alice, bob = _user(api), _user(api)
    assert api.get("/api/v1/users/me", headers=alice).status_code == 200
    source = api.post("/api/v1/accounts", json={"currency": "USD"}, headers=alice).json()
    target = api.post("/api/v1/accounts", json={"currency": "USD"}, headers=bob).json()
    reporting = analyst(api)  # platform-wide figures: a service token, not Alice's
    assert api.get("/api/v1/analytics/overview", headers=alice).status_code == 403
    before = api.get("/api/v1/analytics/overview", headers=reporting).json()

    deposit = api.post(
        "/api/v1/deposits",
        headers={**alice, "Idempotency-Key": uuid.uuid4().hex},
        json={"account_id": source["id"], "amount": 5_000, "currency": "USD"},
    )
    assert deposit.status_code in (201, 202), deposit.text
    assert _final(api, deposit.json()["id"], alice)["status"] == "completed"
    transfer = api.post(
        "/api/v1/transfers",
        headers={**alice, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "source_account_id": source["id"],
            "destination_account_id": target["id"],
            "amount": 1_250,
            "currency": "USD",
        },
    )
    # A transfer is one atomic posting: final in its answer.
    assert (transfer.status_code, transfer.json()["status"]) == (201, "completed")
    assert _final(api, transfer.json()["id"], alice)["status"] == "completed"

    assert api.get(f"/api/v1/accounts/{source['id']}", headers=alice).json()["balance"] == 3_750
    assert api.get(f"/api/v1/accounts/{target['id']}", headers=bob).json()["balance"] == 1_250
    entries = api.get(f"/api/v1/accounts/{source['id']}/entries", headers=alice).json()
    assert [e["amount"] for e in entries["items"]] == [-1_250, 5_000]
    history = api.get(
        "/api/v1/transactions", params={"account_id": source["id"]}, headers=alice
    ).json()
    assert {t["id"] for t in history["items"]} >= {deposit.json()["id"], transfer.json()["id"]}

    deadline = time.monotonic() + 30
    while True:
        after = api.get("/api/v1/analytics/overview", headers=reporting).json()
        if after["transfers_completed"] > before["transfers_completed"]:
            break
        assert time.monotonic() < deadline, "analytics never counted the transfer"
        time.sleep(0.5)
    assert after["volume"]["USD"] >= before["volume"].get("USD", 0) + 6_250
    # Bob cannot see Alice's account or her transfer.
    assert api.get(f"/api/v1/accounts/{source['id']}", headers=bob).status_code == 404
    assert api.get(f"/api/v1/transfers/{transfer.json()['id']}", headers=bob).status_code == 404


def test_analytics_timeseries_has_the_last_minutes_and_refuses_unknown_metrics(
    api: httpx.Client,
) -> None:
    _user(api)  # a registration in the last minutes
    who = analyst(api)
    series = api.get(
        "/api/v1/analytics/timeseries",
        params={"metric": "users_registered", "window": "15"},
        headers=who,
    )
    assert series.status_code == 200, series.text
    body = series.json()
    assert body["metric"] == "users_registered"
    assert body["window_minutes"] == 15
    points = body["series"]
    assert len(points) == 15
    assert all(p["minute"].endswith(":00Z") for p in points)
    assert [p["minute"] for p in points] == sorted(p["minute"] for p in points)
    # This test's own registration is in the last minutes (if the minute turned, the one before).
    deadline = time.monotonic() + 30
    while sum(p["value"] or 0 for p in points[-2:]) < 1:
        assert time.monotonic() < deadline, "the registration never showed in the series"
        time.sleep(0.5)
        points = api.get(
            "/api/v1/analytics/timeseries",
            params={"metric": "users_registered", "window": "15"},
            headers=who,
        ).json()["series"]

    bad = api.get(
        "/api/v1/analytics/timeseries", params={"metric": "nope", "window": "15"}, headers=who
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "users_registered" in bad.json()["valid"]
    assert (
        api.get("/api/v1/analytics/timeseries", params={"metric": "users_registered"}).status_code
        == 401
    )
