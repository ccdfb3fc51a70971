"""Metrics as a test reads them: straight from one process's /metrics, or from Prometheus."""

from __future__ import annotations

import httpx
from kaya787_launcher.observability import PROMETHEUS_PORT
from kaya787_launcher.topology import LOOPBACK
from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS = f"http://{LOOPBACK}:{PROMETHEUS_PORT}"


def sample(port: int, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`, on the /metrics
    of whatever listens on `port` (an app or a sidecar's metrics port); 0 when none.

    The parser names every counter's samples `<name>_total`, even where the exposition has
    no such suffix (some of Dapr's counters): a counter is found under either name."""
    text = httpx.get(f"http://{LOOPBACK}:{port}/metrics", timeout=10.0).text
    wanted = {name, f"{name}_total"}
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name in wanted and all(found.labels.get(k) == v for k, v in labels.items())
    )


def prometheus_value(expr: str) -> float | None:
    """The value of an instant query that returns one series; None when it returns none."""
    response = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10.0)
    body = response.json()
    if response.status_code != 200 or body.get("status") != "success":
        raise AssertionError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
    result = body["data"]["result"]
    if not result:
        return None
    assert len(result) == 1, f"{expr!r} returned {len(result)} series"
    return float(result[0]["value"][1])
