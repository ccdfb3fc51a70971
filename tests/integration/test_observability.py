"""One transfer, seen end to end: a single trace in Jaeger, metrics in Prometheus, logs.

Everything here is read from the real backends the launcher started (Jaeger v2's query API,
Prometheus' HTTP API, promtool, the services' log files), after real traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kaya787_launcher.observability import JAEGER_QUERY_PORT, PROMETHEUS_PORT

from tests.support.ledger import Customer, Ledger, customer, key, transfer_body
from tests.support.platform import Platform, eventually
from tests.support.promql import Query, all_queries, series_count

pytestmark = pytest.mark.integration

JAEGER = f"http://127.0.0.1:{JAEGER_QUERY_PORT}"
PROMETHEUS = f"http://127.0.0.1:{PROMETHEUS_PORT}"
PASSWORD = "correct horse battery staple"  # what tests.support registers users with
TRACED_SERVICES = {"gateway", "transactions", "accounts", "analytics"}


@dataclass(frozen=True)
class TracedTransfer:
    trace_id: str
    client_span_id: str
    transaction_id: str
    who: Customer


@pytest.fixture(scope="module")
def traced(platform: Platform) -> TracedTransfer:
    """A deposit, then one transfer through the public gateway under a trace id we chose."""
    who = customer(platform, ("USD", "USD"))

    async def fund() -> None:
        async with Ledger(platform) as ledger:
            await ledger.deposit(who, who.accounts[0], 5_000)

    asyncio.run(fund())
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    response = platform.public(
        "POST",
        "/api/v1/transfers",
        json=transfer_body(who.accounts[0], who.accounts[1], 1_234),
        headers={
            **who.bearer,
            "Idempotency-Key": key(),
            "traceparent": f"00-{trace_id}-{span_id}-01",
        },
    )
    assert response.status_code in (201, 202), response.text
    transaction_id = response.json()["id"]

    def final() -> bool:
        body = platform.public("GET", f"/api/v1/transfers/{transaction_id}", headers=who.bearer)
        return bool(body.status_code == 200 and body.json()["status"] == "completed")

    eventually(final, timeout=60, what="the traced transfer to complete")
    return TracedTransfer(trace_id, span_id, transaction_id, who)


def _trace(trace_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{JAEGER}/api/traces/{trace_id}", timeout=5.0)
    if response.status_code != 200:
        return None
    data = response.json().get("data") or []
    return data[0] if data else None


def _services(trace: dict[str, Any]) -> dict[str, str]:
    """span id -> service name."""
    processes = trace["processes"]
    return {s["spanID"]: processes[s["processID"]]["serviceName"] for s in trace["spans"]}


def _parents(trace: dict[str, Any]) -> dict[str, str | None]:
    parents: dict[str, str | None] = {}
    for span in trace["spans"]:
        refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
        parents[span["spanID"]] = refs[0]["spanID"] if refs else None
    return parents


def test_one_transfer_is_one_trace_across_every_service(traced: TracedTransfer) -> None:
    def orphans(trace: dict[str, Any]) -> dict[str, str | None]:
        parents = _parents(trace)
        return {span: parent for span, parent in parents.items() if parent not in parents}

    def complete() -> dict[str, Any] | None:
        # Spans arrive in batches, a parent after its children: wait for the whole tree.
        trace = _trace(traced.trace_id)
        if trace is None or not set(_services(trace).values()) >= TRACED_SERVICES:
            return None
        return trace if set(orphans(trace).values()) == {traced.client_span_id} else None

    with contextlib.suppress(AssertionError):
        eventually(complete, timeout=90, every=2.0, what="the whole trace")
    trace = _trace(traced.trace_id)
    assert trace is not None
    services = _services(trace)
    parents = _parents(trace)
    assert set(services.values()) >= TRACED_SERVICES
    assert {s["traceID"] for s in trace["spans"]} == {traced.trace_id}
    # Parented: every span's parent is in the trace, except the edge's, whose parent is the
    # client span we sent in `traceparent`.
    lost = {services[span]: parent for span, parent in orphans(trace).items()}
    assert set(lost.values()) == {traced.client_span_id}, lost
    assert set(lost) == {"gateway"}

    def ancestry(span_id: str) -> list[str]:
        chain = []
        current: str | None = span_id
        while current in parents:
            chain.append(services[current])
            current = parents[current]
        return chain

    # analytics heard of it over pub/sub: its spans descend from transactions' spans, and
    # accounts' (the debit and credit) too — one causal chain from the gateway.
    for service in ("analytics", "accounts"):
        spans = [s for s, name in services.items() if name == service]
        assert spans, service
        assert all("transactions" in ancestry(s) for s in spans), service
        assert all(ancestry(s)[-1] == "gateway" for s in spans), service


def _query(expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10.0)
    assert response.status_code == 200, f"{expr}: {response.text}"
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_every_target_and_sees_requests(platform: Platform) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = httpx.get(f"{PROMETHEUS}/api/v1/targets", timeout=5.0).json()
        active: list[dict[str, Any]] = targets["data"]["activeTargets"]
        return active if active and all(t["health"] == "up" for t in active) else None

    active = eventually(all_up, timeout=60, every=2.0, what="every Prometheus target up")
    jobs = {t["labels"]["job"] for t in active}
    assert len(active) >= 2 * len(platform.app_ids()) + 1, jobs
    up = _query("up")
    assert up
    assert all(sample["value"][1] == "1" for sample in up)

    # Prometheus keeps a restarted app's old series for minutes (a fresh platform shares its
    # data folder), so "the sum went up by 20" can be false for a while: compare instead a
    # sample scraped after the requests with what the app itself counts.
    series = (
        'kaya787_http_requests_total{service="identity",'
        'route="/.well-known/jwks.json",status="200"}'
    )
    started = time.time()
    for _ in range(20):
        assert platform.public("GET", "/.well-known/jwks.json").status_code == 200
    with platform.app_direct("identity") as identity:
        page = identity.get("/metrics").text
    counted = next(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith("kaya787_http_requests_total{")
        and 'route="/.well-known/jwks.json"' in line
        and 'status="200"' in line
    )
    assert counted >= 20

    def scraped_after_the_requests() -> bool:
        value, stamp = _query(series), _query(f"timestamp({series})")
        return bool(
            value
            and stamp
            and float(stamp[0]["value"][1]) >= started
            and float(value[0]["value"][1]) >= counted
        )

    eventually(scraped_after_the_requests, timeout=40, what="identity's request counter")


def test_every_app_metrics_page_passes_promtool(platform: Platform, traced: TracedTransfer) -> None:
    for app_id in platform.app_ids():
        with platform.app_direct(app_id) as app:
            page = app.get("/metrics")
        assert page.status_code == 200, app_id
        assert "kaya787_http_requests_total" in page.text, app_id
        checked = subprocess.run(
            ["promtool", "check", "metrics"],
            input=page.text,
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, f"{app_id}: {checked.stdout}{checked.stderr}"


def test_logs_carry_the_trace_id_and_never_the_token_or_password(
    platform: Platform, traced: TracedTransfer
) -> None:
    logs: dict[str, Path] = {
        app: platform.stack.table.log_path(f"app-{app}") for app in ("transactions", "accounts")
    }
    logs["analytics"] = platform.stack.table.log_path("app-analytics")

    def everywhere() -> bool:
        return all(traced.trace_id in path.read_text(errors="replace") for path in logs.values())

    eventually(everywhere, timeout=60, every=1.0, what="the trace id in every service's log")
    token = traced.who.bearer["authorization"].removeprefix("Bearer ")
    signature = token.rsplit(".", 1)[-1]
    for path in platform.layout.logs.glob("*.log"):
        text = path.read_text(errors="replace")
        assert signature not in text, f"an access token leaked into {path.name}"
        assert PASSWORD not in text, f"a password leaked into {path.name}"


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.source)
def test_every_alert_and_dashboard_query_returns_series(
    platform: Platform, traced: TracedTransfer, query: Query
) -> None:
    """After real traffic (a registration, a deposit, a transfer), each PromQL expression of
    the alert rules and dashboards parses and its series part is not empty."""
    series_count(PROMETHEUS, query.expr)  # parses (raises on a 400)
    eventually(
        lambda: series_count(PROMETHEUS, query.must_return) >= 1,
        timeout=45,
        every=3.0,
        what=f"series for {query.must_return}",
    )
