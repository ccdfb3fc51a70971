"""Transactions use cases against fakes of transactions' own ports."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from kaya787_kit.problems import Problem
from kaya787_kit.state import EtagConflict
from kaya787_transactions.domain import PENDING, Transaction
from kaya787_transactions.ports import AccountInfo, PostingOutcome
from kaya787_transactions.service import TransactionsService


class Store:
    def __init__(self) -> None:
        self.rows: dict[str, Transaction] = {}

    async def get(self, transaction_id: str) -> tuple[Transaction, str] | None:
        row = self.rows.get(transaction_id)
        return None if row is None else (row, "1")

    async def insert(self, transaction: Transaction) -> None:
        if transaction.id in self.rows:
            raise EtagConflict(transaction.id)
        self.rows[transaction.id] = transaction

    async def finish(self, transaction: Transaction, etag: str) -> None:
        self.rows[transaction.id] = transaction


class Keys:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, str]] = {}

    async def get(self, owner_id: str, key: str) -> dict[str, str] | None:
        return self.rows.get((owner_id, key))

    async def claim(self, owner_id: str, key: str, fingerprint: str, transaction_id: str) -> None:
        if (owner_id, key) in self.rows:
            raise EtagConflict(key)
        self.rows[(owner_id, key)] = {"fingerprint": fingerprint, "transaction_id": transaction_id}


class History:
    async def append(self, owner_id: str, transaction_id: str) -> None:
        return None

    async def page(
        self, owner_id: str, before: int | None, limit: int
    ) -> tuple[list[str], int | None]:
        return [], None


class Ledger:
    accounts: ClassVar[dict[str, AccountInfo]] = {
        "a-usd": AccountInfo("a-usd", "alice", "USD", "user"),
        "b-usd": AccountInfo("b-usd", "bob", "USD", "user"),
        "a-eur": AccountInfo("a-eur", "alice", "EUR", "user"),
    }

    async def describe(self, account_id: str) -> AccountInfo | None:
        return self.accounts.get(account_id)

    async def post(
        self, side: str, transaction: Transaction, step: str, account_id: str
    ) -> PostingOutcome:
        return PostingOutcome(accepted=True)


class Starter:
    def __init__(self) -> None:
        self.started: list[str] = []

    async def start(self, transaction: Transaction) -> None:
        self.started.append(transaction.id)


def _service() -> tuple[TransactionsService, Store, Starter]:
    store, starter = Store(), Starter()
    service = TransactionsService(
        store=store,
        keys=Keys(),
        history=History(),
        ledger=Ledger(),
        starter=starter,
        max_amount=10_000,
    )
    return service, store, starter


def _transfer(**changes: Any) -> dict[str, Any]:
    return {
        "source_account_id": "a-usd",
        "destination_account_id": "b-usd",
        "amount": 100,
        "currency": "USD",
        **changes,
    }


async def test_a_transfer_is_recorded_pending_and_its_saga_started() -> None:
    service, store, starter = _service()
    submitted = await service.submit("alice", "transfer", _transfer(), None)
    txn = submitted.transaction
    assert (txn.status, txn.debit_account_id, txn.credit_account_id) == (PENDING, "a-usd", "b-usd")
    assert store.rows[txn.id] == txn
    assert starter.started == [txn.id]


async def test_deposits_and_withdrawals_use_the_funding_account() -> None:
    service, _, _ = _service()
    body = {"account_id": "a-usd", "amount": 50, "currency": "USD"}
    deposit = (await service.submit("alice", "deposit", body, None)).transaction
    withdrawal = (await service.submit("alice", "withdrawal", body, None)).transaction
    assert (deposit.debit_account_id, deposit.credit_account_id) == ("funding-usd", "a-usd")
    assert (withdrawal.debit_account_id, withdrawal.credit_account_id) == ("a-usd", "funding-usd")


async def test_same_key_same_body_is_one_transaction_and_other_body_is_422() -> None:
    service, store, _ = _service()
    first = await service.submit("alice", "transfer", _transfer(), "k")
    again = await service.submit("alice", "transfer", _transfer(), "k")
    assert again.replayed
    assert again.transaction.id == first.transaction.id
    assert len(store.rows) == 1
    with pytest.raises(Problem) as reused:
        await service.submit("alice", "transfer", _transfer(amount=101), "k")
    assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")
    other_user = await service.submit(
        "bob", "transfer", _transfer(source_account_id="b-usd", destination_account_id="a-usd"), "k"
    )
    assert other_user.transaction.id != first.transaction.id


async def test_a_replay_after_a_crash_finishes_the_claimed_transaction() -> None:
    service, store, starter = _service()
    first = await service.submit("alice", "transfer", _transfer(), "k")
    del store.rows[first.transaction.id]  # as if the process died before writing it
    again = await service.submit("alice", "transfer", _transfer(), "k")
    assert again.transaction.id == first.transaction.id
    assert again.transaction.id in store.rows
    assert starter.started.count(first.transaction.id) == 2  # started again, idempotently


@pytest.mark.parametrize(
    ("owner", "body", "status", "code"),
    [
        ("bob", _transfer(), 404, "account_not_found"),
        ("alice", _transfer(destination_account_id="nope"), 404, "destination_account_not_found"),
        ("alice", _transfer(destination_account_id="a-usd"), 422, "same_account"),
        ("alice", _transfer(destination_account_id="a-eur"), 422, "currency_mismatch"),
        ("alice", _transfer(currency="EUR"), 422, "currency_mismatch"),
        ("alice", _transfer(amount=10_001), 422, "amount_over_limit"),
    ],
)
async def test_invalid_transfers_are_refused_before_anything_is_written(
    owner: str, body: dict[str, Any], status: int, code: str
) -> None:
    service, store, starter = _service()
    with pytest.raises(Problem) as refused:
        await service.submit(owner, "transfer", body, "k")
    assert (refused.value.status, refused.value.code) == (status, code)
    assert store.rows == {}
    assert starter.started == []


async def test_only_the_owner_sees_a_transaction() -> None:
    service, _, _ = _service()
    txn = (await service.submit("alice", "transfer", _transfer(), None)).transaction
    assert (await service.get("alice", txn.id)).id == txn.id
    with pytest.raises(Problem) as hidden:
        await service.get("bob", txn.id)
    assert hidden.value.status == 404
