"""The KPI collector: exact names, values from the live view, valid exposition (promtool)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from kaya787_analytics.domain import Aggregates, posting_delta, user_registered_delta
from kaya787_analytics.kpi_metrics import KpiCollector
from kaya787_analytics.live import LiveView
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.analytics import NOW

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _exposition(view: LiveView) -> bytes:
    registry = CollectorRegistry()
    registry.register(KpiCollector(view))
    return generate_latest(registry)


def _view_with_traffic() -> LiveView:
    aggregates = Aggregates()
    for ms in (100, 200, 300):
        delta = posting_delta(
            "transfer",
            "transfer",
            True,
            500,
            "USD",
            NOW,
            started_at=NOW - timedelta(milliseconds=ms),
        )
        assert delta is not None
        aggregates = aggregates.count(delta, NOW).tick()
    failed = posting_delta("transfer", "transfer", False, 5, "EUR", NOW)
    assert failed is not None
    aggregates = aggregates.count(failed, NOW).count(user_registered_delta(NOW), NOW)
    aggregates = aggregates.count_dead_letter("accounts.postings.v1").tick()
    view = LiveView()
    view.publish(aggregates)
    return view


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_kpis_have_the_agreed_names_and_values() -> None:
    samples = _samples(_exposition(_view_with_traffic()))
    assert samples[("kaya787_analytics_transfers_total", (("outcome", "completed"),))] == 3
    assert samples[("kaya787_analytics_transfers_total", (("outcome", "failed"),))] == 1
    assert samples[("kaya787_analytics_deposits_total", ())] == 0
    assert samples[("kaya787_analytics_volume_minor_units_total", (("currency", "USD"),))] == 1500
    assert ("kaya787_analytics_volume_minor_units_total", (("currency", "EUR"),)) not in samples
    assert samples[("kaya787_analytics_users_registered_total", ())] == 1
    assert samples[("kaya787_analytics_accounts_opened_total", ())] == 0
    dead = "kaya787_analytics_dead_letters_total"
    assert samples[(dead, (("topic", "accounts.postings.v1"),))] == 1
    assert samples[(dead, (("topic", "identity.user-registered.v1"),))] == 0
    p50 = samples[("kaya787_analytics_transfer_latency_seconds", (("quantile", "0.5"),))]
    p99 = samples[("kaya787_analytics_transfer_latency_seconds", (("quantile", "0.99"),))]
    assert p50 == pytest.approx(0.2, rel=0.19)
    assert p99 == pytest.approx(0.3)
    assert samples[("kaya787_analytics_transfer_latency_seconds_count", ())] == 3
    assert samples[("kaya787_analytics_transfer_latency_seconds_sum", ())] == pytest.approx(0.6)


def test_no_latency_samples_before_the_first_transfer() -> None:
    samples = _samples(_exposition(LiveView()))
    assert not [key for key in samples if key[0] == "kaya787_analytics_transfer_latency_seconds"]
    assert samples[("kaya787_analytics_transfer_latency_seconds_count", ())] == 0
    assert samples[("kaya787_analytics_transfers_total", (("outcome", "completed"),))] == 0


def test_collect_follows_the_view_without_io() -> None:
    view = LiveView()
    collector = KpiCollector(view)
    view.publish(Aggregates().count(user_registered_delta(NOW), NOW).tick())
    users = next(m for m in collector.collect() if m.name == "kaya787_analytics_users_registered")
    assert users.samples[0].value == 1


@pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool not installed")
@pytest.mark.parametrize("view", [LiveView(), _view_with_traffic()], ids=["empty", "traffic"])
def test_exposition_passes_promtool_check_metrics(view: LiveView) -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=_exposition(view),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
