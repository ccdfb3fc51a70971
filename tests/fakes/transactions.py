"""Fakes of transactions' ports: the store, the history, the ledger, the partner, the
saga starter and the refund alarm."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kaya787_kit.concurrency import EtagConflict, Versioned
from kaya787_kit.errors import NotFound
from kaya787_transactions.domain import PENDING, DailyUsage, Transaction
from kaya787_transactions.ports import (
    AccountInfo,
    LedgerUnconfirmed,
    PartnerOutcome,
    PostingOutcome,
    SagaNotStarted,
)


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[Transaction, int]] = {}
        self.history: dict[str, list[str]] = {}
        self.pending: set[str] = set()
        self.usage: dict[tuple[str, str, str], tuple[DailyUsage, int]] = {}

    async def get(self, transaction_id: str) -> Versioned[Transaction] | None:
        row = self.rows.get(transaction_id)
        return None if row is None else Versioned(row[0], str(row[1]))

    async def create(
        self,
        transaction: Transaction,
        usage: DailyUsage | None = None,
        usage_etag: str | None = None,
    ) -> None:
        key = (transaction.owner_id, transaction.created_at[:10], transaction.currency)
        if transaction.id in self.rows:
            raise EtagConflict(transaction.id)
        if usage is not None:
            current = self.usage.get(key)
            if (current is None) != (usage_etag is None) or (
                current is not None and str(current[1]) != usage_etag
            ):
                raise EtagConflict("usage")
            self.usage[key] = (usage, (current[1] if current else 0) + 1)
        self.rows[transaction.id] = (transaction, 1)
        self.history.setdefault(transaction.owner_id, []).append(transaction.id)
        if transaction.status == PENDING:
            self.pending.add(transaction.id)

    async def finish(self, transaction: Transaction, etag: str) -> None:
        current = self.rows[transaction.id]
        if str(current[1]) != etag:
            raise EtagConflict(transaction.id)
        self.rows[transaction.id] = (transaction, current[1] + 1)
        self.pending.discard(transaction.id)

    async def daily_usage(
        self, owner_id: str, day: str, currency: str
    ) -> tuple[DailyUsage, str | None]:
        found = self.usage.get((owner_id, day, currency))
        return (DailyUsage(), None) if found is None else (found[0], str(found[1]))

    async def overdue(self, older_than_seconds: float) -> list[str]:
        return sorted(self.pending)

    async def page(
        self, owner_id: str, before: int | None, limit: int
    ) -> tuple[list[str], int | None]:
        ids = list(reversed(self.history.get(owner_id, [])))
        return ids[:limit], None


@dataclass
class FakeLedger:
    """Accounts as a dict of balances; postings applied once per (transaction, step)."""

    accounts: dict[str, AccountInfo] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    posted: dict[str, PostingOutcome] = field(default_factory=dict)
    refuse_steps: dict[str, str] = field(default_factory=dict)  # step -> rejection code
    unreachable: int = 0  # calls to fail as a transport error first
    unconfirmed: int = 0  # calls applied whose answer is then lost

    def open(self, account_id: str, owner_id: str, balance: int = 0) -> None:
        self.accounts[account_id] = AccountInfo(account_id, owner_id, "USD", "user")
        self.balances[account_id] = balance

    async def describe(self, account_id: str) -> AccountInfo | None:
        return self.accounts.get(account_id)

    async def post(
        self,
        transaction: Transaction,
        step: str,
        debit_account_id: str,
        credit_account_id: str,
        authorised_by: str | None,
    ) -> PostingOutcome:
        outcome = await self._post(
            transaction, step, debit_account_id, credit_account_id, authorised_by
        )
        if self.unconfirmed:
            self.unconfirmed -= 1
            raise LedgerUnconfirmed("the answer was lost")
        return outcome

    async def _post(
        self,
        transaction: Transaction,
        step: str,
        debit_account_id: str,
        credit_account_id: str,
        authorised_by: str | None,
    ) -> PostingOutcome:
        await asyncio.sleep(0)  # a network call: twins in flight interleave here
        if self.unreachable:
            self.unreachable -= 1
            raise ConnectionError("accounts is restarting")
        posting_id = transaction.posting_id(step)
        if posting_id in self.posted:
            return self.posted[posting_id]
        for side in (debit_account_id, credit_account_id):
            if side not in self.accounts and not side.startswith(("partner-", "payouts-")):
                raise NotFound("account_not_found", "No such account.")
        debit = self.accounts.get(debit_account_id)
        if authorised_by is not None and (debit is None or debit.owner_id != authorised_by):
            raise NotFound("account_not_found", "No such account.")
        if step in self.refuse_steps:
            outcome = PostingOutcome(False, self.refuse_steps[step])
        elif debit is not None and self.balances[debit_account_id] < transaction.amount:
            outcome = PostingOutcome(False, "insufficient_funds")
        else:
            self.balances[debit_account_id] = (
                self.balances.get(debit_account_id, 0) - transaction.amount
            )
            self.balances[credit_account_id] = (
                self.balances.get(credit_account_id, 0) + transaction.amount
            )
            outcome = PostingOutcome(True)
        self.posted[posting_id] = outcome
        return outcome


@dataclass
class FakePartner:
    collect_ok: bool = True
    payout_ok: bool = True
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def collect(self, transaction: Transaction) -> PartnerOutcome:
        self.calls.append(("collect", transaction.id))
        return PartnerOutcome(self.collect_ok, None if self.collect_ok else "card_declined")

    async def pay_out(self, transaction: Transaction) -> PartnerOutcome:
        self.calls.append(("pay_out", transaction.id))
        return PartnerOutcome(
            self.payout_ok, None if self.payout_ok else "beneficiary_bank_refused"
        )


@dataclass
class FakeStarter:
    started: list[str] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # instances whose saga failed or vanished
    unreachable: bool = False  # the workflow runtime is down

    async def start(self, transaction: Transaction) -> None:
        if self.unreachable:
            raise SagaNotStarted(transaction.id)
        self.started.append(transaction.id)

    async def restart(self, transaction: Transaction) -> bool:
        if transaction.id not in self.gone:
            return False
        self.gone.discard(transaction.id)
        await self.start(transaction)
        return True


@dataclass
class FakeAlarm:
    refused: list[str] = field(default_factory=list)

    def refund_refused(self, transaction: Transaction) -> None:
        self.refused.append(transaction.id)
