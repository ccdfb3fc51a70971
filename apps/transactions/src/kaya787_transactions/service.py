"""Transactions use cases: accept deposits, withdrawals and transfers exactly once."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kaya787_kit.problems import Problem
from kaya787_kit.state import EtagConflict

from kaya787_transactions.domain import PENDING, Transaction, fingerprint, funding_account_id
from kaya787_transactions.ports import (
    AccountInfo,
    History,
    IdempotencyKeys,
    Ledger,
    TransactionStore,
    WorkflowStarter,
)


@dataclass(frozen=True)
class Submitted:
    transaction: Transaction
    replayed: bool


def _not_found(what: str = "account") -> Problem:
    # Missing and someone else's look the same.
    return Problem(404, f"{what}_not_found", f"No such {what}.")


class TransactionsService:
    def __init__(
        self,
        *,
        store: TransactionStore,
        keys: IdempotencyKeys,
        # Written by the workflow's first step, off the request path: one user's history is
        # a hot key when they submit many transactions at once.
        history: History,
        ledger: Ledger,
        starter: WorkflowStarter,
        max_amount: int,
    ) -> None:
        self._store = store
        self._keys = keys
        self._history = history
        self._ledger = ledger
        self._starter = starter
        self._max_amount = max_amount

    async def submit(
        self, owner_id: str, kind: str, body: dict[str, Any], idempotency_key: str | None
    ) -> Submitted:
        amount, currency = int(body["amount"]), str(body["currency"])
        if amount > self._max_amount:
            raise Problem(
                422,
                "amount_over_limit",
                f"One {kind} may move at most {self._max_amount} minor units.",
            )
        debit, credit = await self._sides(owner_id, kind, body, currency)
        transaction_id = str(uuid.uuid4())
        if idempotency_key is not None:
            print_ = fingerprint(kind, body)
            claimed = await self._claim(owner_id, idempotency_key, print_, transaction_id)
            if claimed != transaction_id:
                existing = await self._store.get(claimed)
                if existing is not None:
                    if existing[0].status == PENDING:
                        await self._starter.start(existing[0])  # no-op unless it never ran
                    return Submitted(existing[0], replayed=True)
                transaction_id = claimed  # claimed by a request that crashed: finish it
        transaction = Transaction(
            id=transaction_id,
            kind=kind,
            owner_id=owner_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=currency,
            status=PENDING,
            created_at=datetime.now(UTC).isoformat(),
        )
        # The workflow first, then the record: the workflow's first step writes the record
        # too, so a crash between the two still ends in a recorded, finished transaction.
        await self._starter.start(transaction)
        with contextlib.suppress(EtagConflict):  # the workflow (or a replay) wrote it first
            await self._store.insert(transaction)
        return Submitted(transaction, replayed=False)

    async def _claim(self, owner_id: str, key: str, print_: str, transaction_id: str) -> str:
        """The transaction id this key stands for (ours if we claimed it first)."""
        for _ in range(3):
            existing = await self._keys.get(owner_id, key)
            if existing is not None:
                if existing["fingerprint"] != print_:
                    raise Problem(
                        422,
                        "idempotency_key_reused",
                        "This Idempotency-Key was used with a different request.",
                    )
                return existing["transaction_id"]
            try:
                await self._keys.claim(owner_id, key, print_, transaction_id)
                return transaction_id
            except EtagConflict:
                continue
        raise Problem(409, "idempotency_conflict", "Concurrent requests share this key; retry.")

    async def _sides(
        self, owner_id: str, kind: str, body: dict[str, Any], currency: str
    ) -> tuple[str, str]:
        """(debited account, credited account) after ownership and currency checks."""
        if kind == "transfer":
            source = await self._own(owner_id, str(body["source_account_id"]))
            destination = await self._ledger.describe(str(body["destination_account_id"]))
            if destination is None or destination.kind != "user":
                raise _not_found("destination_account")
            if source.id == destination.id:
                raise Problem(422, "same_account", "Source and destination are the same.")
            for account in (source, destination):
                _same_currency(account, currency)
            return source.id, destination.id
        account = await self._own(owner_id, str(body["account_id"]))
        _same_currency(account, currency)
        funding = funding_account_id(currency)
        return (funding, account.id) if kind == "deposit" else (account.id, funding)

    async def _own(self, owner_id: str, account_id: str) -> AccountInfo:
        info = await self._ledger.describe(account_id)
        if info is None or info.owner_id != owner_id or info.kind != "user":
            raise _not_found()
        return info

    async def get(self, owner_id: str, transaction_id: str) -> Transaction:
        found = await self._store.get(transaction_id)
        if found is None or found[0].owner_id != owner_id:
            raise _not_found("transaction")
        return found[0]

    async def history(
        self, owner_id: str, account_id: str | None, limit: int, cursor: int | None
    ) -> tuple[list[Transaction], int | None]:
        ids, next_cursor = await self._history.page(owner_id, cursor, limit)
        seen: set[str] = set()
        items = []
        for transaction_id in ids:
            found = await self._store.get(transaction_id)
            if found is None or transaction_id in seen:
                continue  # listed by a request that crashed before creating it
            seen.add(transaction_id)
            txn = found[0]
            if account_id is None or account_id in (txn.debit_account_id, txn.credit_account_id):
                items.append(txn)
        return items, next_cursor


def _same_currency(account: AccountInfo, currency: str) -> None:
    if account.currency != currency:
        raise Problem(
            422,
            "currency_mismatch",
            f"Account {account.id} is in {account.currency}, not {currency}.",
        )
