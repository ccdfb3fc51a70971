"""The saga's telemetry: its input carries the request's trace, and its counters add up."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import grpc
from kaya787_transactions.domain import COMPLETED, PENDING, Transaction
from kaya787_transactions.telemetry import WorkflowMetrics
from kaya787_transactions.workflow import (
    TRACE_FIELD,
    WORKFLOW_NAME,
    DaprWorkflowStarter,
    ledger_move,
    workflow_input,
)
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, generate_latest

TXN = Transaction(
    id="t-1",
    kind="transfer",
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


STARTED = 'kaya787_workflows_started_total{service="transactions",workflow="ledger_move"}'
IN_FLIGHT = 'kaya787_workflows_in_flight{service="transactions",workflow="ledger_move"}'
COMPLETED_OK = (
    'kaya787_workflows_completed_total{outcome="completed",service="transactions",'
    'workflow="ledger_move"}'
)


def test_the_workflow_input_carries_the_requests_trace_context() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /api/v1/transfers") as span:
        carried = workflow_input(TXN)
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert carried[TRACE_FIELD]["traceparent"].split("-")[1] == trace_id
    # The rest is the transaction as before: activities read it unchanged.
    assert Transaction.from_json(carried) == TXN


class _Ctx:
    """Just enough of DaprWorkflowContext to drive the orchestrator by hand."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def call_activity(self, name: str, *, input: Any, retry_policy: Any) -> str:
        self.calls.append((name, input))
        return name


def _drive(saga: Generator[Any, Any, str], answers: dict[str, Any]) -> str:
    step = next(saga)
    while True:
        try:
            step = saga.send(answers.get(step))
        except StopIteration as done:
            return str(done.value)


def test_every_activity_of_the_saga_gets_the_trace_context() -> None:
    ctx = _Ctx()
    txn = {**TXN.to_json(), TRACE_FIELD: {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}}
    saga: Generator[Any, Any, str] = ledger_move(ctx, txn)  # type: ignore[arg-type]
    answers = {"record": None, "post_step": {"accepted": True}, "finish": COMPLETED}
    assert _drive(saga, answers) == COMPLETED
    names = [name for name, _ in ctx.calls]
    assert names == ["record", "post_step", "post_step", "finish", "announce"]
    for name, inp in ctx.calls:
        carrier = inp[TRACE_FIELD] if TRACE_FIELD in inp else inp["transaction"][TRACE_FIELD]
        assert carrier == txn[TRACE_FIELD], name


class _Client:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.inputs: list[Any] = []

    async def schedule_new_workflow(self, name: str, *, input: Any, instance_id: str) -> str:
        assert name == WORKFLOW_NAME
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
    asyncio.run(DaprWorkflowStarter(_Client(), metrics).start(TXN))  # type: ignore[arg-type]
    asyncio.run(
        DaprWorkflowStarter(_Client(_already_exists()), metrics).start(TXN)  # type: ignore[arg-type]
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
