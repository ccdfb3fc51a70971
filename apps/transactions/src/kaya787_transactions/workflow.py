"""The ledger saga as a Dapr Workflow: debit, credit, complete; compensate after a debit.

Every step is idempotent (accounts applies a step once per transaction id) and the
workflow's state lives in Dapr (placement + scheduler), so a crash of this app, of
accounts or of a sidecar only delays a transaction: it resumes and ends completed or
failed, never half-done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
from dapr.ext.workflow import (
    DaprWorkflowContext,
    RetryPolicy,
    WorkflowActivityContext,
    WorkflowRuntime,
)
from dapr.ext.workflow.aio import DaprWorkflowClient
from kaya787_kit.components import PUBSUB, STATESTORE
from kaya787_kit.state import DaprStateStore, EtagConflict, retry_on_conflict
from kaya787_kit.tracing import activity_span, current_carrier
from opentelemetry.trace import Span, Tracer

from kaya787_transactions.adapters import (
    DaprHistory,
    DaprOutcomeFeed,
    DaprTransactions,
    InvokedLedger,
)
from kaya787_transactions.domain import COMPLETED, FAILED, Transaction
from kaya787_transactions.telemetry import WorkflowMetrics

WORKFLOW_NAME = "ledger_move"
# Transient failures (accounts restarting, a sidecar gone) are retried for ~10 minutes:
# long enough to outlive any restart, with no guess about a half-applied step needed.
STEP_RETRY = RetryPolicy(
    first_retry_interval=timedelta(milliseconds=500),
    max_number_of_attempts=60,
    backoff_coefficient=1.5,
    max_retry_interval=timedelta(seconds=10),
)

# Returns the running loop's shared client (never closed by the caller).
HttpFactory = Callable[[], httpx.AsyncClient]

# The workflow input's field with the W3C context of the request that started it: the
# worker has no request context, and Dapr does not carry ours into activities.
TRACE_FIELD = "trace"


def _carrier(inp: dict[str, Any]) -> dict[str, str] | None:
    found = inp.get(TRACE_FIELD)
    return found if isinstance(found, dict) else None


def _post(ctx: DaprWorkflowContext, txn: dict[str, Any], side: str, step: str, account: str) -> Any:
    return ctx.call_activity(
        "post_step",
        input={"transaction": txn, "side": side, "step": step, "account_id": account},
        retry_policy=STEP_RETRY,
    )


def _finish(
    ctx: DaprWorkflowContext, txn: dict[str, Any], status: str, reason: str | None
) -> Generator[Any, Any, None]:
    yield ctx.call_activity(
        "finish",
        input={
            "id": txn["id"],
            "status": status,
            "reason": reason,
            TRACE_FIELD: txn.get(TRACE_FIELD),
        },
        retry_policy=STEP_RETRY,
    )
    # The outcome's event, once the final state is stored (replayed if we crash between).
    yield ctx.call_activity(
        "announce",
        input={"id": txn["id"], TRACE_FIELD: txn.get(TRACE_FIELD)},
        retry_policy=STEP_RETRY,
    )


def ledger_move(ctx: DaprWorkflowContext, txn: dict[str, Any]) -> Generator[Any, Any, str]:
    yield ctx.call_activity("record", input=txn, retry_policy=STEP_RETRY)
    debit = yield _post(ctx, txn, "debit", "debit", txn["debit_account_id"])
    if not debit["accepted"]:
        yield from _finish(ctx, txn, FAILED, debit["code"])
        return FAILED
    credit = yield _post(ctx, txn, "credit", "credit", txn["credit_account_id"])
    if not credit["accepted"]:
        # Give the money back to where it came from, then fail with the credit's reason.
        yield _post(ctx, txn, "credit", "compensate", txn["debit_account_id"])
        yield from _finish(ctx, txn, FAILED, credit["code"])
        return FAILED
    yield from _finish(ctx, txn, COMPLETED, None)
    return COMPLETED


def _attributes(ctx: WorkflowActivityContext, activity: str) -> dict[str, Any]:
    return {
        "workflow.name": WORKFLOW_NAME,
        "workflow.instance_id": ctx.workflow_id,
        "workflow.task_id": ctx.task_id,
        "workflow.activity": activity,
    }


def build_runtime(
    grpc_host: str,
    grpc_port: int,
    http: HttpFactory,
    accounts_app_id: str,
    *,
    tracer: Tracer,
    metrics: WorkflowMetrics,
) -> WorkflowRuntime:
    runtime = WorkflowRuntime(host=grpc_host, port=str(grpc_port))

    def span(
        ctx: WorkflowActivityContext, activity: str, name: str, carrier: dict[str, Any]
    ) -> AbstractContextManager[Span]:
        # Each activity's span joins the trace of the request that started the workflow.
        return activity_span(
            tracer, f"{WORKFLOW_NAME} {name}", _carrier(carrier), _attributes(ctx, activity)
        )

    async def post_step(ctx: WorkflowActivityContext, inp: dict[str, Any]) -> dict[str, Any]:
        with span(ctx, "post_step", inp["step"], inp["transaction"]):
            outcome = await InvokedLedger(http(), accounts_app_id).post(
                inp["side"],
                Transaction.from_json(inp["transaction"]),
                inp["step"],
                inp["account_id"],
            )
        return {"accepted": outcome.accepted, "code": outcome.code}

    async def finish(ctx: WorkflowActivityContext, inp: dict[str, Any]) -> str:
        store = DaprTransactions(DaprStateStore(http(), STATESTORE))

        async def attempt() -> str:
            found = await store.get(inp["id"])
            if found is None:
                raise RuntimeError(f"transaction {inp['id']} has no record")
            current, etag = found
            done = current.finish(inp["status"], inp["reason"], datetime.now(UTC).isoformat())
            if done is not current:
                await store.finish(done, etag)
                metrics.finished_one(done.id, done.status)
            else:  # finished by an earlier attempt whose answer was lost
                metrics.finished_one(done.id, None)
            return done.status

        with span(ctx, "finish", "finish", inp):
            return await retry_on_conflict(attempt, attempts=16)

    async def announce(ctx: WorkflowActivityContext, inp: dict[str, Any]) -> None:
        with span(ctx, "announce", "announce", inp):
            found = await DaprTransactions(DaprStateStore(http(), STATESTORE)).get(inp["id"])
            if found is None:
                raise RuntimeError(f"transaction {inp['id']} has no record")
            await DaprOutcomeFeed(http(), PUBSUB).publish(found[0])

    async def record(ctx: WorkflowActivityContext, txn: dict[str, Any]) -> None:
        """Make sure the transaction's record and history entry exist (idempotent)."""
        with span(ctx, "record", "record", txn):
            state = DaprStateStore(http(), STATESTORE)
            with contextlib.suppress(EtagConflict):  # the API wrote it already
                await DaprTransactions(state).insert(Transaction.from_json(txn))
            history = DaprHistory(state)
            if not await history.contains(txn["owner_id"], txn["id"]):
                await history.append(txn["owner_id"], txn["id"])

    runtime.register_workflow(ledger_move, name=WORKFLOW_NAME)
    runtime.register_activity(record, name="record")
    runtime.register_activity(post_step, name="post_step")
    runtime.register_activity(finish, name="finish")
    runtime.register_activity(announce, name="announce")
    return runtime


def workflow_input(transaction: Transaction) -> dict[str, Any]:
    """The saga's input: the transaction, and the trace of the request that starts it."""
    return {**transaction.to_json(), TRACE_FIELD: current_carrier()}


class DaprWorkflowStarter:
    def __init__(self, client: DaprWorkflowClient, metrics: WorkflowMetrics) -> None:
        self._client = client
        self._metrics = metrics

    async def start(self, transaction: Transaction) -> None:
        try:
            await self._client.schedule_new_workflow(
                WORKFLOW_NAME, input=workflow_input(transaction), instance_id=transaction.id
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return  # a retried or concurrent request with the same key started it
            await self._await_instance(transaction.id, exc)
        except Exception as exc:
            await self._await_instance(transaction.id, exc)
        self._metrics.started_one(transaction.id)

    async def _await_instance(self, instance_id: str, error: Exception) -> None:
        # Perhaps scheduled anyway (the answer was lost): fine once the instance exists.
        for _ in range(20):
            state = None
            with contextlib.suppress(Exception):
                state = await self._client.get_workflow_state(instance_id, fetch_payloads=False)
            if state is not None:
                return
            await asyncio.sleep(0.1)
        raise error
