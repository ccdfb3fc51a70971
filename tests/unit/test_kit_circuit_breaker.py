"""The circuit breaker's state machine, on a fake clock: closed -> open -> half-open ->
closed, and what does not move it."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kaya787_kit.circuit_breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    TRIAL_RETRY_AFTER_SECONDS,
    BreakerPolicy,
    CircuitBreaker,
    CircuitOpen,
    guarded_call,
)
from kaya787_kit.circuit_metrics import CircuitBreakerMetrics
from kaya787_kit.metrics import AppMetrics
from kaya787_kit.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers

POLICY = BreakerPolicy(failures=3, window_seconds=10.0, cooldown_seconds=5.0)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    changes: list[tuple[str, str]] = field(default_factory=list)
    rejected: int = 0

    def on_change(self, target: str, old: str, new: str) -> None:
        assert target == "accounts"
        self.changes.append((old, new))

    def on_reject(self, target: str) -> None:
        self.rejected += 1


def _breaker(clock: Clock, listener: Recorder | None = None) -> CircuitBreaker:
    return CircuitBreaker("accounts", POLICY, clock=clock, listener=listener)


def _fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.record(breaker.admit(), failed=True)


def _open(breaker: CircuitBreaker) -> None:
    _fail(breaker, POLICY.failures)
    assert breaker.state == OPEN


def test_it_opens_after_n_failures_in_a_row_and_refuses_at_once() -> None:
    clock, seen = Clock(), Recorder()
    breaker = _breaker(clock, seen)
    _fail(breaker, POLICY.failures - 1)
    assert breaker.state == CLOSED
    _fail(breaker)
    assert breaker.state == OPEN
    assert seen.changes == [(CLOSED, OPEN)]
    clock.now += 2.0
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    assert refused.value.retry_after == pytest.approx(POLICY.cooldown_seconds - 2.0)
    assert refused.value.target == "accounts"
    assert seen.rejected == 1


def test_a_success_in_between_starts_the_count_again() -> None:
    breaker = _breaker(Clock())
    _fail(breaker, POLICY.failures - 1)
    breaker.record(breaker.admit(), failed=False)  # a 4xx is an answer: a success
    _fail(breaker, POLICY.failures - 1)
    assert breaker.state == CLOSED


def test_failures_spread_wider_than_the_window_do_not_open_it() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    for _ in range(POLICY.failures * 3):
        _fail(breaker)
        clock.now += POLICY.window_seconds / (POLICY.failures - 1) + 0.1
    assert breaker.state == CLOSED


def test_after_the_cooldown_one_trial_goes_through_and_its_success_closes_it() -> None:
    clock, seen = Clock(), Recorder()
    breaker = _breaker(clock, seen)
    _open(breaker)
    clock.now += POLICY.cooldown_seconds
    assert breaker.state == HALF_OPEN  # before any call: the gauge says so at once
    trial = breaker.admit()
    assert trial is True
    with pytest.raises(CircuitOpen) as second:  # one trial at a time
        breaker.admit()
    assert second.value.retry_after == TRIAL_RETRY_AFTER_SECONDS
    breaker.record(trial, failed=False)
    assert breaker.state == CLOSED
    assert breaker.admit() is False
    assert seen.changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_a_failed_trial_opens_it_for_another_cooldown() -> None:
    clock, seen = Clock(), Recorder()
    breaker = _breaker(clock, seen)
    _open(breaker)
    clock.now += POLICY.cooldown_seconds + 1
    breaker.record(breaker.admit(), failed=True)
    assert breaker.state == OPEN
    clock.now += POLICY.cooldown_seconds - 0.5
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    assert refused.value.retry_after == pytest.approx(0.5)
    assert [new for _, new in seen.changes].count(OPEN) == 2


def test_once_closed_again_it_takes_n_new_failures_to_open() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.now += POLICY.cooldown_seconds
    breaker.record(breaker.admit(), failed=False)
    _fail(breaker, POLICY.failures - 1)
    assert breaker.state == CLOSED


def test_calls_let_through_before_it_opened_do_not_decide_anything() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    early = [breaker.admit() for _ in range(2)]
    _open(breaker)
    breaker.record(early[0], failed=False)  # a slow success from before: still open
    assert breaker.state == OPEN
    clock.now += POLICY.cooldown_seconds
    trial = breaker.admit()
    breaker.record(early[1], failed=True)  # a slow failure: the trial decides
    breaker.record(trial, failed=False)
    assert breaker.state == CLOSED


def test_an_abandoned_trial_lets_the_next_call_be_the_trial() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.now += POLICY.cooldown_seconds
    breaker.abandon(breaker.admit())
    assert breaker.admit() is True


def test_a_policy_that_could_never_open_or_close_is_refused() -> None:
    for bad in ({"failures": 0}, {"window_seconds": 0}, {"cooldown_seconds": -1}):
        with pytest.raises(ValueError, match="not a breaker policy"):
            BreakerPolicy(**bad)


def test_threads_sharing_it_count_every_failure() -> None:
    breaker = CircuitBreaker("accounts", BreakerPolicy(failures=400, window_seconds=60.0))

    def fail_many() -> None:
        for _ in range(100):
            breaker.record(breaker.admit(), failed=True)

    threads = [threading.Thread(target=fail_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert breaker.state == OPEN


async def test_guarded_call_counts_exceptions_and_failed_results_but_not_the_rest() -> None:
    clock = Clock()
    breaker = _breaker(clock)

    async def answer(status: int) -> int:
        return status

    async def unreachable() -> int:
        raise ConnectionRefusedError("accounts is down")

    def failed(status: int) -> bool:
        return status >= 500

    for _ in range(10):  # refusals are answers: never open it
        assert await guarded_call(breaker, lambda: answer(404), failed) == 404
    assert breaker.state == CLOSED
    assert await guarded_call(breaker, lambda: answer(503), failed) == 503
    with pytest.raises(ConnectionRefusedError):
        await guarded_call(breaker, unreachable, failed)
    with pytest.raises(ConnectionRefusedError):
        await guarded_call(breaker, unreachable, failed)
    assert breaker.state == OPEN
    calls = 0

    async def counted() -> int:
        nonlocal calls
        calls += 1
        return 200

    with pytest.raises(CircuitOpen):
        await guarded_call(breaker, counted, failed)
    assert calls == 0  # refused without calling


async def test_a_cancelled_trial_does_not_block_the_next_one() -> None:
    clock = Clock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.now += POLICY.cooldown_seconds
    task = asyncio.create_task(guarded_call(breaker, lambda: asyncio.sleep(60, 200), bool))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.admit() is True


def _samples(metrics: AppMetrics, name: str) -> float:
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("target") == "accounts":
                return float(sample.value)
    raise AssertionError(f"no {name} sample")


def test_the_metrics_show_the_state_and_count_opens_and_refusals() -> None:
    clock = Clock()
    watcher = CircuitBreakerMetrics("transactions")
    breaker = CircuitBreaker("accounts", POLICY, clock=clock, listener=watcher)
    watcher.watch(breaker)
    metrics = AppMetrics("transactions", watcher.collectors())
    assert _samples(metrics, "kaya787_circuit_breaker_state") == 0
    assert _samples(metrics, "kaya787_circuit_breaker_opens_total") == 0
    _open(breaker)
    with pytest.raises(CircuitOpen):
        breaker.admit()
    assert _samples(metrics, "kaya787_circuit_breaker_state") == 2
    assert _samples(metrics, "kaya787_circuit_breaker_opens_total") == 1
    assert _samples(metrics, "kaya787_circuit_breaker_rejected_total") == 1
    clock.now += POLICY.cooldown_seconds
    assert _samples(metrics, "kaya787_circuit_breaker_state") == 1
    breaker.record(breaker.admit(), failed=False)
    assert _samples(metrics, "kaya787_circuit_breaker_state") == 0


def test_an_open_circuit_is_a_503_problem_with_retry_after() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/transfer")
    async def transfer() -> None:
        raise CircuitOpen("accounts", 2.2)

    response = TestClient(app).get("/transfer")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == "3"
    body = response.json()
    assert (body["code"], body["status"], body["instance"]) == ("circuit_open", 503, "/transfer")
    assert "accounts" not in body["detail"]  # which peer is the operator's business
