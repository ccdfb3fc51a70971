"""Transactions use cases against fakes of transactions' own ports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kaya787_kit.errors import AppError
from kaya787_kit.problems import status_of
from kaya787_transactions.domain import COMPLETED, FAILED, PENDING, transaction_id_for
from kaya787_transactions.service import Limits, TransactionsService

from tests.fakes.transactions import FakeLedger, FakeStarter, FakeStore


def _service(
    balance: int = 1_000, daily_major: int = 100
) -> tuple[TransactionsService, FakeStore, FakeLedger, FakeStarter]:
    store, ledger, starter = FakeStore(), FakeLedger(), FakeStarter()
    ledger.open("a-usd", "alice", balance)
    ledger.open("b-usd", "bob")
    service = TransactionsService(
        store=store,
        history=store,
        ledger=ledger,
        starter=starter,
        limits=Limits(max_major=1_000, daily_payin_major=daily_major),
    )
    return service, store, ledger, starter


def _transfer(**changes: Any) -> dict[str, Any]:
    return {
        "source_account_id": "a-usd",
        "destination_account_id": "b-usd",
        "amount": 100,
        "currency": "USD",
        **changes,
    }


def _deposit(amount: int = 100) -> dict[str, Any]:
    return {"account_id": "a-usd", "amount": amount, "currency": "USD"}


async def test_money_posts_without_an_idempotency_key_are_400_and_do_nothing() -> None:
    service, store, ledger, starter = _service()
    for kind, body in (("transfer", _transfer()), ("deposit", _deposit())):
        with pytest.raises(AppError) as missing:
            await service.submit("alice", kind, body, None)
        assert (status_of(missing.value), missing.value.code) == (400, "idempotency_key_required")
    assert (store.rows, ledger.posted, starter.started) == ({}, {}, [])


async def test_a_transfer_is_one_posting_final_at_once() -> None:
    service, store, ledger, starter = _service()
    submitted = await service.submit("alice", "transfer", _transfer(), "k1")
    assert submitted.transaction.status == COMPLETED
    assert submitted.transaction.id == transaction_id_for("alice", "k1")
    assert ledger.balances == {"a-usd": 900, "b-usd": 100}
    assert store.rows[submitted.transaction.id][0].status == COMPLETED
    assert store.pending == set()  # nothing for the reconciler
    assert starter.started == []  # no saga


async def test_an_overdraft_is_a_failed_transfer_with_its_reason() -> None:
    service, _, ledger, _ = _service(balance=50)
    failed = (await service.submit("alice", "transfer", _transfer(), "k1")).transaction
    assert (failed.status, failed.failure_reason) == (FAILED, "insufficient_funds")
    assert ledger.balances == {"a-usd": 50, "b-usd": 0}


async def test_same_key_same_body_is_one_transaction_and_other_body_is_422() -> None:
    service, _, ledger, _ = _service()
    first = await service.submit("alice", "transfer", _transfer(), "k1")
    again = await service.submit("alice", "transfer", _transfer(), "k1")
    assert (again.transaction, again.replayed) == (first.transaction, True)
    assert ledger.balances["a-usd"] == 900
    with pytest.raises(AppError) as reused:
        await service.submit("alice", "transfer", _transfer(amount=5), "k1")
    assert (status_of(reused.value), reused.value.code) == (422, "idempotency_key_reused")
    # Another user's identical key is another transaction.
    ledger.open("b2", "bob", 500)
    other = await service.submit("bob", "transfer", _transfer(source_account_id="b2"), "k1")
    assert other.transaction.id != first.transaction.id


async def test_a_retry_after_a_crash_between_posting_and_record_answers_the_posting() -> None:
    service, store, ledger, _ = _service()
    await service.submit("alice", "transfer", _transfer(), "k1")
    store.rows.clear()  # as if transactions died after the ledger committed
    store.history.clear()
    retried = await service.submit("alice", "transfer", _transfer(), "k1")
    assert retried.transaction.status == COMPLETED
    assert ledger.balances == {"a-usd": 900, "b-usd": 100}  # moved once
    assert list(store.rows) == [retried.transaction.id]


async def test_a_lost_ledger_answer_is_a_503_and_the_retry_moves_the_money_once() -> None:
    service, store, ledger, _ = _service()
    ledger.unconfirmed = 1
    with pytest.raises(AppError) as lost:
        await service.submit("alice", "transfer", _transfer(), "k1")
    assert (status_of(lost.value), lost.value.code) == (503, "ledger_unconfirmed")
    assert store.rows == {}
    retried = await service.submit("alice", "transfer", _transfer(), "k1")
    assert retried.transaction.status == COMPLETED
    assert ledger.balances == {"a-usd": 900, "b-usd": 100}


async def test_twin_requests_in_flight_together_answer_one_transaction() -> None:
    service, store, ledger, _ = _service()
    twins = await asyncio.gather(
        *(service.submit("alice", "transfer", _transfer(), "k1") for _ in range(4))
    )
    assert len({t.transaction for t in twins}) == 1
    assert sorted(t.replayed for t in twins) == [False, True, True, True]
    assert ledger.balances == {"a-usd": 900, "b-usd": 100}
    assert len(store.rows) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (_transfer(source_account_id="b-usd"), 404, "account_not_found"),
        (_transfer(destination_account_id="nope"), 404, "account_not_found"),
        (_transfer(amount=1_000 * 100 + 1), 422, "amount_over_limit"),
        (_transfer(currency="XYZ"), 422, "invalid_currency"),
    ],
)
async def test_invalid_transfers_are_refused_before_anything_is_written(
    body: dict[str, Any], status: int, code: str
) -> None:
    service, store, ledger, _ = _service()
    with pytest.raises(AppError) as refused:
        await service.submit("alice", "transfer", body, "k")
    assert (status_of(refused.value), refused.value.code) == (status, code)
    assert (store.rows, ledger.posted) == ({}, {})


async def test_deposits_and_withdrawals_are_pending_until_their_saga_ends() -> None:
    service, store, ledger, starter = _service()
    deposit = (await service.submit("alice", "deposit", _deposit(), "d1")).transaction
    withdrawal = (await service.submit("alice", "withdrawal", _deposit(), "w1")).transaction
    assert (deposit.status, withdrawal.status) == (PENDING, PENDING)
    assert (deposit.debit_account_id, deposit.credit_account_id) == ("partner-usd", "a-usd")
    assert (withdrawal.debit_account_id, withdrawal.credit_account_id) == ("a-usd", "payouts-usd")
    assert starter.started == [deposit.id, withdrawal.id]
    assert store.pending == {deposit.id, withdrawal.id}
    assert ledger.posted == {}  # a customer's request alone moves no money


async def test_a_rail_is_accepted_while_the_workflow_runtime_is_down_and_started_later() -> None:
    service, store, _, starter = _service()
    starter.unreachable = True
    deposit = await service.submit("alice", "deposit", _deposit(), "d1")
    assert (deposit.transaction.status, deposit.replayed) == (PENDING, False)
    assert starter.started == []
    assert store.pending == {deposit.transaction.id}  # the record stands: nothing is lost
    starter.unreachable = False
    again = await service.submit("alice", "deposit", _deposit(), "d1")
    assert again.replayed
    assert starter.started == [deposit.transaction.id]  # the client's retry starts it


async def test_deposits_beyond_the_daily_limit_are_refused() -> None:
    service, store, _, starter = _service(daily_major=100)  # 100 USD = 10,000 cents a day
    await service.submit("alice", "deposit", _deposit(6_000), "d1")
    with pytest.raises(AppError) as over:
        await service.submit("alice", "deposit", _deposit(4_001), "d2")
    assert (status_of(over.value), over.value.code) == (422, "daily_limit_exceeded")
    await service.submit("alice", "deposit", _deposit(4_000), "d3")
    assert len(starter.started) == 2
    assert next(iter(store.usage.values()))[0].total == 10_000


async def test_a_replayed_pending_deposit_restarts_nothing_new_and_a_final_one_nothing() -> None:
    service, store, _, starter = _service()
    deposit = (await service.submit("alice", "deposit", _deposit(), "d1")).transaction
    again = await service.submit("alice", "deposit", _deposit(), "d1")
    assert again.replayed
    assert starter.started == [deposit.id, deposit.id]  # start is a no-op for a running one
    done = deposit.finish(COMPLETED, None, "later")
    await store.finish(done, str(store.rows[deposit.id][1]))
    await service.submit("alice", "deposit", _deposit(), "d1")
    assert starter.started == [deposit.id, deposit.id]  # a completed saga is never re-run


async def test_the_reconciler_restarts_the_sagas_that_are_gone() -> None:
    service, _, _, starter = _service()
    stuck = (await service.submit("alice", "deposit", _deposit(), "d1")).transaction
    running = (await service.submit("alice", "deposit", _deposit(), "d2")).transaction
    starter.gone.add(stuck.id)
    assert await service.reconcile(older_than_seconds=0) == (2, 1)
    assert starter.started[-1] == stuck.id
    assert running.id not in starter.gone


async def test_only_the_owner_sees_a_transaction() -> None:
    service, _, _, _ = _service()
    txn = (await service.submit("alice", "transfer", _transfer(), "k")).transaction
    assert (await service.get("alice", txn.id)).id == txn.id
    with pytest.raises(AppError) as hidden:
        await service.get("bob", txn.id)
    assert status_of(hidden.value) == 404
