"""Every branch of the rail sagas, their activities run on fakes of transactions' ports."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any

import pytest
from kaya787_transactions.domain import COMPLETED, FAILED, PENDING, Transaction
from kaya787_transactions.rails import RailSteps
from kaya787_transactions.telemetry import WorkflowMetrics
from kaya787_transactions.workflow import (
    TRACE_FIELD,
    payin,
    payout,
    register_activities,
    workflow_input,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracer

from tests.fakes.transactions import FakeAlarm, FakeLedger, FakePartner, FakeStore

TRACE = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}


class _Ctx:
    """Just enough of DaprWorkflowContext to drive an orchestrator by hand."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call_activity(
        self, name: str, *, input: dict[str, Any], retry_policy: Any
    ) -> tuple[str, dict[str, Any]]:
        self.calls.append((name, input))
        return name, input


class _ActivityCtx:
    workflow_id = "wf-1"
    task_id = 1


class World:
    def __init__(self, balance: int = 1_000) -> None:
        self.store, self.ledger = FakeStore(), FakeLedger()
        self.partner, self.alarm = FakePartner(), FakeAlarm()
        self.ledger.open("a-usd", "alice", balance)
        self.steps = RailSteps(
            store=self.store, ledger=self.ledger, partner=self.partner, on_refund_refused=self.alarm
        )

    async def accept(self, kind: str, amount: int = 100) -> Transaction:
        debit, credit = ("partner-usd", "a-usd") if kind == "deposit" else ("a-usd", "payouts-usd")
        txn = Transaction(
            id=f"{kind}-1",
            kind=kind,
            owner_id="alice",
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency="USD",
            status=PENDING,
            created_at=datetime.now(UTC).isoformat(),
        )
        await self.store.create(txn)
        return txn

    async def run(
        self,
        saga: Callable[[Any, dict[str, Any]], Generator[Any, Any, str]],
        txn: Transaction,
    ) -> tuple[str, list[str]]:
        activities: dict[str, Callable[..., Any]] = {}
        register_activities(
            lambda fn, name: activities.__setitem__(name, fn),
            lambda: self.steps,
            tracer=NoOpTracer(),
            metrics=WorkflowMetrics("transactions", "rails"),
        )
        ctx = _Ctx()
        running = saga(ctx, {"id": txn.id, TRACE_FIELD: TRACE})
        try:
            name, inp = running.send(None)
            while True:
                answer = await activities[name](_ActivityCtx(), inp)
                name, inp = running.send(answer)
        except StopIteration as done:
            assert all(inp[TRACE_FIELD] == TRACE for _, inp in ctx.calls)
            return str(done.value), [
                f"{n}:{inp['step']}" if n == "post" else n for n, inp in ctx.calls
            ]

    def status(self, txn: Transaction) -> tuple[str, str | None]:
        stored = self.store.rows[txn.id][0]
        return stored.status, stored.failure_reason


async def test_a_confirmed_payin_credits_the_customer_from_the_partner() -> None:
    world = World(balance=0)
    txn = await world.accept("deposit")
    outcome, steps = await world.run(payin, txn)
    assert (outcome, steps) == (COMPLETED, ["collect", "post:deposit", "finish"])
    assert world.ledger.balances == {"a-usd": 100, "partner-usd": -100}
    assert world.status(txn) == (COMPLETED, None)
    assert world.store.pending == set()


async def test_a_declined_payin_fails_and_moves_nothing() -> None:
    world = World(balance=0)
    world.partner.collect_ok = False
    txn = await world.accept("deposit")
    outcome, steps = await world.run(payin, txn)
    assert (outcome, steps) == (FAILED, ["collect", "finish"])
    assert world.ledger.posted == {}
    assert world.status(txn) == (FAILED, "card_declined")


async def test_a_paid_out_withdrawal_holds_then_settles_to_the_partner() -> None:
    world = World()
    txn = await world.accept("withdrawal")
    outcome, steps = await world.run(payout, txn)
    assert (outcome, steps) == (
        COMPLETED,
        ["post:hold", "pay_out", "post:settle", "finish"],
    )
    assert world.ledger.balances == {"a-usd": 900, "payouts-usd": 0, "partner-usd": 100}
    assert world.status(txn) == (COMPLETED, None)


async def test_a_refused_debit_fails_before_the_partner_is_asked() -> None:
    world = World(balance=50)
    txn = await world.accept("withdrawal")
    outcome, steps = await world.run(payout, txn)
    assert (outcome, steps) == (FAILED, ["post:hold", "finish"])
    assert world.partner.calls == []
    assert world.status(txn) == (FAILED, "insufficient_funds")


async def test_a_refused_payout_is_refunded_to_the_customer() -> None:
    world = World()
    world.partner.payout_ok = False
    txn = await world.accept("withdrawal")
    outcome, steps = await world.run(payout, txn)
    assert (outcome, steps) == (
        FAILED,
        ["post:hold", "pay_out", "post:refund", "finish"],
    )
    assert world.ledger.balances == {"a-usd": 1_000, "payouts-usd": 0}
    assert world.status(txn) == (FAILED, "beneficiary_bank_refused")
    assert world.alarm.refused == []


async def test_a_refused_refund_is_alarmed_and_never_reported_as_a_plain_failure() -> None:
    world = World()
    world.partner.payout_ok = False
    world.ledger.refuse_steps["refund"] = "account_closed"
    txn = await world.accept("withdrawal")
    outcome, steps = await world.run(payout, txn)
    assert (outcome, steps) == (
        FAILED,
        ["post:hold", "pay_out", "post:refund", "refund_refused", "finish"],
    )
    assert world.alarm.refused == [txn.id]
    assert world.status(txn) == (FAILED, "refund_refused")
    assert world.ledger.balances["payouts-usd"] == 100  # held: what the alarm is about


@pytest.mark.parametrize("saga", [payin, payout])
async def test_a_saga_run_again_after_it_ended_changes_nothing(
    saga: Callable[[Any, dict[str, Any]], Generator[Any, Any, str]],
) -> None:
    world = World()
    txn = await world.accept("deposit" if saga is payin else "withdrawal")
    first, _ = await world.run(saga, txn)
    balances, finished = dict(world.ledger.balances), world.store.rows[txn.id][0]
    again, _ = await world.run(saga, txn)  # a replay, or the reconciler restarting it
    assert again == first == COMPLETED
    assert world.ledger.balances == balances
    assert world.store.rows[txn.id][0] == finished


async def test_an_unreachable_ledger_fails_the_activity_so_dapr_retries_it() -> None:
    world = World()
    world.ledger.unreachable = 1
    txn = await world.accept("withdrawal")
    with pytest.raises(ConnectionError):
        await world.steps.post(txn, "hold")
    assert (await world.steps.post(txn, "hold")).committed
    assert world.ledger.balances["a-usd"] == 900


def test_the_saga_input_carries_the_requests_trace_context_and_only_the_id() -> None:
    txn = Transaction(
        id="t-1",
        kind="withdrawal",
        owner_id="u-1",
        debit_account_id="a-1",
        credit_account_id="payouts-usd",
        amount=100,
        currency="USD",
        status=PENDING,
        created_at="2026-01-01T00:00:00+00:00",
    )
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /api/v1/withdrawals") as span:
        carried = workflow_input(txn)
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert carried[TRACE_FIELD]["traceparent"].split("-")[1] == trace_id
    # Only the id: every activity reads the stored record, never a copy in the history.
    assert carried["id"] == txn.id
    assert set(carried) == {"id", TRACE_FIELD}
