"""The rail sagas as Dapr Workflows: pay-ins (deposits) and payouts (withdrawals).

Transfers have no saga: they are one atomic posting. A rail crosses the payment partner,
outside the ledger, so its steps are durable workflow activities:
- pay-in: the partner collects -> the ledger credits the customer -> completed
  (declined by the partner -> failed, nothing posted);
- payout: hold the money (customer -> payouts) -> the partner pays out -> settle
  (payouts -> partner) -> completed; refused -> refund (payouts -> customer) -> failed;
  a refused refund is logged, counted and alerted on.
Each step lives in rails.py behind the app's ports and is idempotent, so a crash of this
app, of accounts, of the partner or of a sidecar only delays a transaction; if a saga gives
up (retries exhausted), the reconciler starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import grpc
from dapr.ext.workflow import (
    DaprWorkflowContext,
    RetryPolicy,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
)
from dapr.ext.workflow.aio import DaprWorkflowClient
from kaya787_kit.tracing import activity_span, current_carrier
from opentelemetry.trace import Span, Tracer

from kaya787_transactions.domain import COMPLETED, FAILED, Transaction
from kaya787_transactions.ports import SagaNotStarted
from kaya787_transactions.rails import DEPOSIT, HOLD, REFUND, SETTLE, RailSteps
from kaya787_transactions.telemetry import WorkflowMetrics

PAYIN, PAYOUT = "payin", "payout"
WORKFLOWS = {"deposit": PAYIN, "withdrawal": PAYOUT}
# Transient failures (a service restarting, a sidecar gone) are retried for ~5 minutes;
# past that the saga fails and the reconciler starts it again.
STEP_RETRY = RetryPolicy(
    first_retry_interval=timedelta(milliseconds=500),
    max_number_of_attempts=30,
    backoff_coefficient=1.5,
    max_retry_interval=timedelta(seconds=10),
)

# Builds the steps on the calling event loop (activities run on the worker's own loop).
StepsFactory = Callable[[], RailSteps]

# The workflow input's field with the W3C context of the request that started it: the
# worker has no request context, and Dapr does not carry ours into activities.
TRACE_FIELD = "trace"


def _call(ctx: DaprWorkflowContext, activity: str, txn: dict[str, Any], **extra: Any) -> Any:
    return ctx.call_activity(
        activity,
        input={"id": txn["id"], TRACE_FIELD: txn.get(TRACE_FIELD), **extra},
        retry_policy=STEP_RETRY,
    )


def _finish(
    ctx: DaprWorkflowContext, txn: dict[str, Any], status: str, reason: str | None
) -> Generator[Any, Any, str]:
    yield _call(ctx, "finish", txn, status=status, reason=reason)
    return status


def payin(ctx: DaprWorkflowContext, txn: dict[str, Any]) -> Generator[Any, Any, str]:
    collected = yield _call(ctx, "collect", txn)
    if not collected["ok"]:
        return (yield from _finish(ctx, txn, FAILED, collected["reason"] or "payin_declined"))
    posted = yield _call(ctx, "post", txn, step=DEPOSIT)
    if not posted["committed"]:
        return (yield from _finish(ctx, txn, FAILED, posted["code"]))
    return (yield from _finish(ctx, txn, COMPLETED, None))


def payout(ctx: DaprWorkflowContext, txn: dict[str, Any]) -> Generator[Any, Any, str]:
    held = yield _call(ctx, "post", txn, step=HOLD)
    if not held["committed"]:
        return (yield from _finish(ctx, txn, FAILED, held["code"]))
    paid = yield _call(ctx, "pay_out", txn)
    if paid["ok"]:
        settled = yield _call(ctx, "post", txn, step=SETTLE)
        if settled["committed"]:
            return (yield from _finish(ctx, txn, COMPLETED, None))
        # Paid out but not settled cannot be undone: it is the refund's case too.
        yield _call(ctx, "refund_refused", txn, code=settled["code"])
        return (yield from _finish(ctx, txn, FAILED, "settlement_refused"))
    refunded = yield _call(ctx, "post", txn, step=REFUND)
    if not refunded["committed"]:
        yield _call(ctx, "refund_refused", txn, code=refunded["code"])
        return (yield from _finish(ctx, txn, FAILED, "refund_refused"))
    return (yield from _finish(ctx, txn, FAILED, paid["reason"] or "payout_refused"))


def register_activities(
    register: Callable[[Callable[..., Any], str], None],
    steps: StepsFactory,
    *,
    tracer: Tracer,
    metrics: WorkflowMetrics,
) -> None:
    """The activities of both sagas, each one step of RailSteps inside a span."""

    def span(
        ctx: WorkflowActivityContext, activity: str, inp: dict[str, Any]
    ) -> AbstractContextManager[Span]:
        # Each activity's span joins the trace of the request that started the workflow.
        carrier = inp.get(TRACE_FIELD)
        return activity_span(
            tracer,
            f"rail {activity}",
            carrier if isinstance(carrier, dict) else None,
            {
                "workflow.instance_id": ctx.workflow_id,
                "workflow.task_id": ctx.task_id,
                "workflow.activity": activity,
            },
        )

    async def collect(ctx: WorkflowActivityContext, inp: dict[str, Any]) -> dict[str, Any]:
        with span(ctx, "collect", inp):
            rail = steps()
            outcome = await rail.collect(await rail.load(inp["id"]))
        return {"ok": outcome.ok, "reason": outcome.reason}

    async def pay_out(ctx: WorkflowActivityContext, inp: dict[str, Any]) -> dict[str, Any]:
        with span(ctx, "pay_out", inp):
            rail = steps()
            outcome = await rail.pay_out(await rail.load(inp["id"]))
        return {"ok": outcome.ok, "reason": outcome.reason}

    async def post(ctx: WorkflowActivityContext, inp: dict[str, Any]) -> dict[str, Any]:
        with span(ctx, f"post {inp['step']}", inp):
            rail = steps()
            outcome = await rail.post(await rail.load(inp["id"]), inp["step"])
        return {"committed": outcome.committed, "code": outcome.code}

    async def refund_refused(ctx: WorkflowActivityContext, inp: dict[str, Any]) -> None:
        with span(ctx, "refund_refused", inp):
            rail = steps()
            await rail.refund_refused(await rail.load(inp["id"]), inp.get("code"))

    async def finish(ctx: WorkflowActivityContext, inp: dict[str, Any]) -> str:
        with span(ctx, "finish", inp):
            done = await steps().finish(inp["id"], inp["status"], inp["reason"])
        metrics.finished_one(inp["id"], done.status if done.changed else None)
        return done.status

    for activity in (collect, pay_out, post, refund_refused, finish):
        register(activity, activity.__name__)


def build_runtime(
    grpc_host: str,
    grpc_port: int,
    steps: StepsFactory,
    *,
    tracer: Tracer,
    metrics: WorkflowMetrics,
) -> WorkflowRuntime:
    runtime = WorkflowRuntime(host=grpc_host, port=str(grpc_port))
    runtime.register_workflow(payin, name=PAYIN)
    runtime.register_workflow(payout, name=PAYOUT)
    register_activities(
        lambda fn, name: runtime.register_activity(fn, name=name),
        steps,
        tracer=tracer,
        metrics=metrics,
    )
    return runtime


def workflow_input(transaction: Transaction) -> dict[str, Any]:
    """The saga's input: the transaction's id, and the trace of the request that starts it."""
    return {"id": transaction.id, TRACE_FIELD: current_carrier()}


_GONE = (WorkflowStatus.FAILED, WorkflowStatus.TERMINATED)


class DaprSagaStarter:
    def __init__(self, client: DaprWorkflowClient, metrics: WorkflowMetrics) -> None:
        self._client = client
        self._metrics = metrics

    async def start(self, transaction: Transaction) -> None:
        name = WORKFLOWS[transaction.kind]
        try:
            await self._client.schedule_new_workflow(
                name, input=workflow_input(transaction), instance_id=transaction.id
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return  # a retried or concurrent request with the same key started it
            await self._await_instance(transaction.id, exc)
        except Exception as exc:
            await self._await_instance(transaction.id, exc)
        self._metrics.started_one(transaction.id)

    async def restart(self, transaction: Transaction) -> bool:
        state = await self._client.get_workflow_state(transaction.id, fetch_payloads=False)
        if state is not None and state.runtime_status not in _GONE:
            return False  # still running (or done, and the record is about to say so)
        if state is not None:
            await self._client.purge_workflow(transaction.id)
        await self.start(transaction)
        return True

    async def _await_instance(self, instance_id: str, error: Exception) -> None:
        # Perhaps scheduled anyway (the answer was lost): fine once the instance exists.
        for _ in range(20):
            state = None
            with contextlib.suppress(Exception):
                state = await self._client.get_workflow_state(instance_id, fetch_payloads=False)
            if state is not None:
                return
            await asyncio.sleep(0.1)
        raise SagaNotStarted(instance_id) from error
