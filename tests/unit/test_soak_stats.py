"""tests/bench/soak_stats.py: the soak's windows, spans and bound checks on made-up runs."""

from __future__ import annotations

import math

import pytest

from tests.bench.soak_stats import (
    RSS_GROWTH_LIMIT,
    UNREADABLE,
    Outcome,
    Sample,
    error_check,
    finality_check,
    latency_check,
    percentile,
    rss_checks,
    rss_growth,
    spans,
    windows,
)


def ok(due_s: float, accept_ms: float, state: str = "completed") -> Outcome:
    return Outcome(due_s, 201, accept_ms, state, accept_ms, f"t-{due_s}")


def test_percentile_is_nearest_rank_and_nan_when_empty() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile(reversed(values), 0.0) == 1.0
    assert math.isnan(percentile([], 0.99))


def test_windows_group_by_due_time_and_count_errors_apart() -> None:
    outcomes = [
        ok(1.0, 10.0),
        ok(29.9, 30.0, "failed"),
        Outcome(30.0, 503, 5.0),
        Outcome(31.0, 0, math.inf),
        ok(59.0, 20.0),
        ok(62.0, 40.0),  # beyond the run's 60 s (a late due): into the last window
    ]
    first, second = windows(outcomes, run_s=60.0)
    assert (first.start_s, first.offered, first.completed, first.failed) == (0.0, 2, 1, 1)
    assert first.errors == {}
    assert (first.accept_p50_ms, first.accept_p99_ms) == (30.0, 30.0)
    assert (second.start_s, second.offered, second.completed) == (30.0, 4, 2)
    assert second.errors == {503: 1, 0: 1}
    # Errors are not latencies of accepted transfers: only the two 201s rank...
    assert second.accept_p99_ms == 40.0
    # ...but they were not final in time: accept -> final p99 is infinite, not 40 ms.
    assert second.final_p99_ms == math.inf
    assert first.final_p99_ms == 30.0


def test_a_transfer_finished_after_the_run_stays_unmeasured() -> None:
    late = Outcome(1.0, 500, 5000.0, "completed", None, "t-late")
    (window,) = windows([late, *(ok(2.0, 10.0) for _ in range(200))], run_s=30.0)
    assert window.completed == 200  # in their answer: the late one is an error
    assert window.final_p99_ms == 10.0  # 1 in 201 is under the 1 % a p99 leaves out


def test_a_run_with_a_partial_last_window_and_an_empty_window() -> None:
    cut = windows([ok(5.0, 1.0), ok(70.0, 2.0)], run_s=75.0)
    assert [w.start_s for w in cut] == [0.0, 30.0, 60.0]
    assert cut[1].offered == 0
    assert math.isnan(cut[1].accept_p99_ms)


@pytest.mark.parametrize(
    ("minutes", "reference_min", "end_min"),
    [
        (30, 5.0, 1.0),  # the first five minutes against the last one
        (60, 5.0, 1.0),  # a longer run keeps both
        (12, 2.0, 1.0),  # first sixth
        (3, 0.5, 0.5),  # first and last sixth
        (1, 0.5, 0.5),  # never less than one window
    ],
)
def test_spans_scale_with_short_runs(minutes: float, reference_min: float, end_min: float) -> None:
    span = spans(minutes * 60)
    assert (span.reference_end_s / 60, span.end_s / 60) == (reference_min, end_min)
    assert span.end_start_s == minutes * 60 - end_min * 60


def test_a_warm_up_moves_the_reference_after_it_and_leaves_the_end_alone() -> None:
    span = spans(40 * 60, warmup_s=10 * 60)
    assert (span.start_s, span.reference_end_s) == (600.0, 900.0)
    assert (span.end_s, span.end_start_s) == (60.0, 2340.0)
    short = spans(22 * 60, warmup_s=10 * 60)  # 12 measured minutes: their first sixth
    assert (short.start_s, short.reference_end_s) == (600.0, 720.0)


def test_a_slow_warm_up_is_no_reference_for_latency() -> None:
    outcomes = [ok(i / 2, 9_000.0 if i < 1200 else 100.0) for i in range(6000)]
    warmed = spans(3000, warmup_s=600)
    check = latency_check(outcomes, warmed, "accept", _accept)
    assert check.passed, check.detail
    assert "after 10 min of warm-up" in check.name
    assert not latency_check(outcomes, spans(3000), "accept", _accept).passed


def test_rss_baseline_is_taken_after_the_warm_up() -> None:
    # A store filling its bounded window during the warm-up, then flat.
    samples = [Sample(t, {"redis": min(100 + t // 6, 200) * 2**20}) for t in range(0, 3001, 5)]
    (warmed,) = rss_growth(samples, spans(3000, warmup_s=600))
    assert warmed.change == 0.0
    (cold,) = rss_growth(samples, spans(3000))
    assert cold.change > RSS_GROWTH_LIMIT


def _steady_run(reference_p99: float, end_p99: float) -> list[Outcome]:
    """30 min at 2/s: 100 ms each, and a tail of 1 in 100 at the given p99 per span."""
    outcomes = []
    for i in range(3600):
        due = i / 2
        slow = i % 100 == 99
        if due < 300 and slow:
            outcomes.append(ok(due, reference_p99))
        elif due >= 1740 and slow:
            outcomes.append(ok(due, end_p99))
        else:
            outcomes.append(ok(due, 100.0 if not slow else 150.0))
    return outcomes


def _accept(o: Outcome) -> float | None:
    return o.accepted_ms


def _final(o: Outcome) -> float:
    return o.until_final_ms


@pytest.mark.parametrize(
    ("end_p99", "passed"),
    [(500.0, True), (590.0, True), (610.0, False), (410.0, True), (390.0, False)],
)
def test_latency_bound_is_20_percent_either_way(end_p99: float, passed: bool) -> None:
    check = latency_check(_steady_run(500.0, end_p99), spans(1800), "accept", _accept)
    assert check.passed is passed, check.detail
    assert "last 1 min vs first 5 min" in check.name


def test_latency_between_the_spans_does_not_count() -> None:
    outcomes = _steady_run(500.0, 500.0)
    outcomes += [ok(900.0, 60_000.0)] * 30  # a bad stretch mid-run: other windows' business
    assert latency_check(outcomes, spans(1800), "accept", _accept).passed


def test_errors_at_the_end_fail_accept_to_final_but_not_accept() -> None:
    outcomes = _steady_run(500.0, 500.0)
    outcomes += [Outcome(1790.0, 500, 5_000.0)] * 20  # 20 of ~140 at the end: > 1 %
    assert latency_check(outcomes, spans(1800), "accept", _accept).passed
    final = latency_check(outcomes, spans(1800), "accept→final", _final)
    assert not final.passed
    assert final.detail.startswith("inf ms vs 500 ms")


def test_latency_with_nothing_accepted_at_the_end_fails() -> None:
    outcomes = [ok(1.0, 100.0), Outcome(1790.0, 503, 5.0)]
    check = latency_check(outcomes, spans(1800), "accept", _accept)
    assert not check.passed
    assert "nothing to compare" in check.detail


def _samples(rss_at: dict[str, list[int]], every_s: float = 30.0) -> list[Sample]:
    count = len(next(iter(rss_at.values())))
    return [Sample(i * every_s, {n: v[i] for n, v in rss_at.items()}) for i in range(count)]


def test_rss_growth_compares_the_warm_baseline_with_the_end() -> None:
    # 30 min sampled every 30 s (61 samples). "warming" grows fast in the first minutes
    # then stays flat; "leaking" grows steadily after the warm-up.
    warming = [100 + min(i, 8) * 10 for i in range(61)]  # flat from minute 4 at 180
    leaking = [100 + max(0, i - 8) * 1 for i in range(61)]
    growths = {g.name: g for g in rss_growth(_samples({"w": warming, "l": leaking}), spans(1800))}
    assert growths["w"].baseline == 180  # median over minutes 4-5, not the cold start
    assert growths["w"].change == 0.0
    assert growths["l"].baseline == 101  # minutes 4-5: samples 8..10 -> 100, 101, 102
    assert growths["l"].end == 151  # the last minute: samples 58..60 -> 150, 151, 152
    assert growths["l"].peak == 152
    checks = {c.name: c for c in rss_checks(growths.values())}
    assert checks["RSS of w"].passed
    assert not checks["RSS of l"].passed
    assert "+49.5%" in checks["RSS of l"].detail


def test_rss_bound_is_strictly_under_ten_percent_and_a_vanished_process_fails() -> None:
    flat = [100] * 61
    just_under = [100] * 58 + [109] * 3
    at_limit = [100] * 58 + [110] * 3
    gone_then_back = [0] * 12 + [100] * 49  # no baseline: growth cannot be bounded
    checks = {
        c.name: c.passed
        for c in rss_checks(
            rss_growth(
                _samples({"f": flat, "u": just_under, "a": at_limit, "g": gone_then_back}),
                spans(1800),
            )
        )
    }
    assert checks == {"RSS of f": True, "RSS of u": True, "RSS of a": False, "RSS of g": False}


def test_errors_are_counted_by_status() -> None:
    clean = error_check([ok(1.0, 5.0), ok(2.0, 5.0, "failed")])
    assert clean.passed
    assert clean.detail == "0 of 2 transfers"
    dirty = error_check([ok(1.0, 5.0), Outcome(2.0, 503, 1.0), Outcome(3.0, 0, math.inf)])
    assert not dirty.passed
    assert dirty.detail == "no answer: 1, 503: 1 of 3 transfers"
    assert dirty.line().startswith("FAIL  errors: ")
    emptied = error_check([Outcome(1.0, UNREADABLE, 6_849.0)])
    assert emptied.detail == "201 without the transfer: 1 of 1 transfers"


def test_finality_counts_transfers_finished_late_and_fails_on_any_open_one() -> None:
    late = Outcome(2.0, 503, 1.0, "completed", 90_000.0, "t-late")
    done = finality_check([ok(1.0, 5.0), late])
    assert done.passed
    assert "1 only after the run" in done.detail
    still_open = finality_check([ok(1.0, 5.0), Outcome(2.0, 0, math.inf)])
    assert not still_open.passed
    pending = finality_check([Outcome(1.0, 201, 5.0, "pending", None, "t-p")])
    assert not pending.passed
