"""The saga's telemetry: its counters add up, whatever the starts and retries."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from kaya787_transactions.domain import COMPLETED, PENDING, Transaction
from kaya787_transactions.telemetry import WorkflowMetrics
from kaya787_transactions.workflow import PAYOUT, DaprSagaStarter
from prometheus_client import CollectorRegistry, generate_latest

WORKFLOW_NAME = "rails"
TXN = Transaction(
    id="t-1",
    kind="withdrawal",
    owner_id="u-1",
    debit_account_id="a-1",
    credit_account_id="a-2",
    amount=100,
    currency="USD",
    status=PENDING,
    created_at="2026-01-01T00:00:00+00:00",
)


def _value(metrics: WorkflowMetrics, line_start: str) -> float:
    registry = CollectorRegistry()
    for collector in metrics.collectors():
        registry.register(collector)
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start}")


STARTED = 'kaya787_workflows_started_total{service="transactions",workflow="rails"}'
IN_FLIGHT = 'kaya787_workflows_in_flight{service="transactions",workflow="rails"}'
COMPLETED_OK = (
    'kaya787_workflows_completed_total{outcome="completed",service="transactions",workflow="rails"}'
)


class _Client:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.inputs: list[Any] = []

    async def schedule_new_workflow(self, name: str, *, input: Any, instance_id: str) -> str:
        assert name == PAYOUT
        self.inputs.append(input)
        if self.error is not None:
            raise self.error
        return instance_id


def _already_exists() -> Exception:
    error: Exception = grpc.aio.AioRpcError(
        grpc.StatusCode.ALREADY_EXISTS, grpc.aio.Metadata(), grpc.aio.Metadata()
    )
    return error


def test_started_counts_new_instances_only() -> None:
    metrics = WorkflowMetrics("transactions", WORKFLOW_NAME)
    asyncio.run(DaprSagaStarter(_Client(), metrics).start(TXN))  # type: ignore[arg-type]
    asyncio.run(
        DaprSagaStarter(_Client(_already_exists()), metrics).start(TXN)  # type: ignore[arg-type]
    )
    assert _value(metrics, STARTED) == 1
    assert _value(metrics, IN_FLIGHT) == 1


def test_finishing_counts_the_outcome_once_and_leaves_flight() -> None:
    metrics = WorkflowMetrics("transactions", WORKFLOW_NAME)
    metrics.started_one("t-1")
    metrics.finished_one("t-1", COMPLETED)
    metrics.finished_one("t-1", None)  # the last step retried after its answer was lost
    assert _value(metrics, COMPLETED_OK) == 1
    assert _value(metrics, IN_FLIGHT) == 0


def test_an_instance_resumed_from_an_earlier_process_never_goes_below_zero() -> None:
    metrics = WorkflowMetrics("transactions", WORKFLOW_NAME)
    metrics.finished_one("started-elsewhere", "failed")
    assert _value(metrics, IN_FLIGHT) == 0
    assert _value(metrics, STARTED) == 0
