"""Pure aggregation rules: per-minute buckets, retention, latency percentiles, time parsing."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from kaya787_analytics.domain import (
    RETENTION_MINUTES,
    Aggregates,
    Delta,
    posting_delta,
    user_registered_delta,
)
from kaya787_analytics.latency import MAX_INDEX, LatencyHistogram, bucket_bounds, bucket_index
from kaya787_kit.timestamps import parse_time

from tests.fakes.analytics import NOW


def transfer(amount: int, currency: str, at: datetime, started_at: datetime | None = None) -> Delta:
    delta = posting_delta("transfer", "transfer", True, amount, currency, at, started_at)
    assert delta is not None
    return delta


def test_events_land_in_the_minute_they_occurred() -> None:
    aggregates = Aggregates()
    for second in (0, 59):
        moment = NOW.replace(minute=12, second=second)
        aggregates = aggregates.count(transfer(100, "USD", moment), NOW)
    aggregates = aggregates.count(user_registered_delta(NOW.replace(minute=13, second=0)), NOW)
    assert set(aggregates.minutes) == {"2026-12-01T10:12:00Z", "2026-12-01T10:13:00Z"}
    first = aggregates.minutes["2026-12-01T10:12:00Z"]
    assert (first.transfers_completed, dict(first.volume)) == (2, {"USD": 200})
    assert aggregates.minutes["2026-12-01T10:13:00Z"].users_registered == 1


def test_retention_keeps_a_bounded_number_of_minutes() -> None:
    aggregates = Aggregates()
    start = NOW - timedelta(minutes=RETENTION_MINUTES + 30)
    for i in range(RETENTION_MINUTES + 31):
        moment = start + timedelta(minutes=i)
        aggregates = aggregates.count(user_registered_delta(moment), moment)
    assert len(aggregates.minutes) == RETENTION_MINUTES
    assert min(aggregates.minutes) == "2026-11-30T10:31:00Z"
    assert aggregates.overview.users_registered == RETENTION_MINUTES + 31  # totals keep all


def test_an_event_older_than_retention_counts_only_in_the_totals() -> None:
    old = NOW - timedelta(minutes=RETENTION_MINUTES + 1)
    aggregates = Aggregates().count(user_registered_delta(old), NOW)
    assert aggregates.minutes == {}
    assert aggregates.overview.users_registered == 1


def test_a_future_stamp_counts_in_the_current_minute() -> None:
    future = NOW + timedelta(days=3)
    aggregates = Aggregates().count(user_registered_delta(future), NOW)
    assert list(aggregates.minutes) == ["2026-12-01T10:30:00Z"]


def test_latency_comes_from_completed_transfers_only() -> None:
    started = NOW - timedelta(milliseconds=1500)
    completed = transfer(1, "USD", NOW, started_at=started)
    failed = posting_delta("transfer", "transfer", False, 1, "USD", NOW, started)
    deposit = posting_delta("deposit", "deposit", True, 1, "USD", NOW, started)
    assert failed is not None
    assert deposit is not None
    assert completed.latency_ms == pytest.approx(1500.0)
    assert failed.latency_ms is None
    assert deposit.latency_ms is None
    assert failed.amount == 0
    assert deposit.amount == 1


def test_bucket_bounds_tile_the_line() -> None:
    for index in range(MAX_INDEX):
        assert bucket_bounds(index)[1] == bucket_bounds(index + 1)[0]
    for ms in (0.0, 0.5, 1.0, 2.0, 3.3, 1000.0, 123456.0, 1e12):
        low, high = bucket_bounds(bucket_index(ms))
        assert low <= ms < high


def test_percentiles_of_a_uniform_spread_are_within_a_bucket() -> None:
    histogram = LatencyHistogram()
    samples = list(range(1, 1001))
    random.Random(7).shuffle(samples)
    for ms in samples:
        histogram = histogram.record(float(ms))
    for q, exact in ((0.5, 500), (0.95, 950), (0.99, 990)):
        estimate = histogram.quantile(q)
        assert estimate is not None
        assert abs(estimate - exact) / exact < 0.10, (q, estimate)
    assert histogram.quantile(1.0) == 1000.0


def test_percentiles_are_exact_for_one_sample_and_none_for_none() -> None:
    assert LatencyHistogram().percentiles_ms() == {"p50": None, "p95": None, "p99": None}
    one = LatencyHistogram().record(250.0)
    assert one.percentiles_ms() == {"p50": 250.0, "p95": 250.0, "p99": 250.0}


def test_a_slow_tail_shows_in_p99_not_p50() -> None:
    histogram = LatencyHistogram()
    for _ in range(98):
        histogram = histogram.record(100.0)
    histogram = histogram.record(5000.0).record(5000.0)
    assert histogram.quantile(0.5) == pytest.approx(100.0)
    # Within one bucket (2^(1/4) wide) of the true 5000 ms.
    assert histogram.quantile(0.99) == pytest.approx(5000.0, rel=0.19)


def test_negative_latency_from_clock_skew_is_zero() -> None:
    assert LatencyHistogram().record(-40.0).quantile(0.5) == 0.0


@pytest.mark.parametrize(
    ("kind", "step", "committed"),
    [
        ("withdrawal", "hold", True),
        ("withdrawal", "settle", True),
        ("withdrawal", "refund", True),
        ("deposit", "deposit", False),
    ],
)
def test_payout_steps_and_a_rejected_deposit_are_not_in_the_overview(
    kind: str, step: str, committed: bool
) -> None:
    assert posting_delta(kind, step, committed, 5, "USD", NOW) is None


def test_merge_equals_recording_everything_in_one() -> None:
    a = LatencyHistogram().record(3.0).record(40.0)
    b = LatencyHistogram().record(900.0)
    assert a.merge(b) == LatencyHistogram().record(3.0).record(40.0).record(900.0)


def test_aggregates_round_trip_through_json() -> None:
    aggregates = Aggregates().count(transfer(700, "EUR", NOW, NOW - timedelta(seconds=2)), NOW)
    aggregates = aggregates.count_dead_letter("accounts.account-opened.v1").tick()
    restored = Aggregates.from_json(json.loads(json.dumps(aggregates.to_json())))
    assert restored == aggregates


def test_a_document_from_before_minutes_existed_still_loads() -> None:
    old = {"overview": {"transfers_completed": 2, "volume": {"USD": 5}}, "recent_event_ids": ["a"]}
    loaded = Aggregates.from_json(old)
    assert loaded.overview.transfers_completed == 2
    assert loaded.minutes == {}
    assert loaded.latency.count == 0
    assert loaded.public_overview()["accounts_opened"] == 0


def test_overview_keeps_the_contract_fields() -> None:
    body = Aggregates().public_overview()
    contract = {"transfers_completed", "transfers_failed", "deposits_completed", "volume"}
    assert contract | {"users_registered", "as_of"} <= set(body)
    assert set(body["transfer_latency_ms"]) == {"p50", "p95", "p99"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T10:00:00.123456789Z", datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-12-01T12:00:00+02:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T10:00:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("not a time", None),
        (None, None),
    ],
)
def test_parse_time(raw: str | None, expected: datetime | None) -> None:
    assert parse_time(raw) == expected
