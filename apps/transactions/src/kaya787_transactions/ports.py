"""What the transactions use cases and the rail sagas need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kaya787_kit.concurrency import Versioned

from kaya787_transactions.domain import DailyUsage, Transaction


@dataclass(frozen=True)
class AccountInfo:
    id: str
    owner_id: str
    currency: str
    kind: str


@dataclass(frozen=True)
class PostingOutcome:
    """The ledger's answer to a posting: committed, or rejected for good (with a code)."""

    committed: bool
    code: str | None = None


class LedgerUnconfirmed(RuntimeError):
    """The ledger did not confirm a posting; the caller retries it (applied at most once)."""


class SagaNotStarted(RuntimeError):
    """The workflow runtime could not be reached to start a rail's saga. The transaction's
    record stands (pending): a replay of its key or the reconciler starts it later."""


class TransactionStore(Protocol):
    async def get(self, transaction_id: str) -> Versioned[Transaction] | None: ...

    async def create(
        self,
        transaction: Transaction,
        usage: DailyUsage | None = None,
        usage_etag: str | None = None,
    ) -> None:
        """Insert the record and append it to its owner's history, atomically; a pending
        one is also listed for the reconciler, and `usage` is the owner's new pay-in
        counter of the day (read at `usage_etag`). Raises EtagConflict when the record,
        the history or the counter moved meanwhile: then nothing was written."""
        ...

    async def finish(self, transaction: Transaction, etag: str) -> None:
        """Store the final state and take it off the reconciler's list, atomically."""
        ...

    async def daily_usage(
        self, owner_id: str, day: str, currency: str
    ) -> tuple[DailyUsage, str | None]: ...

    async def overdue(self, older_than_seconds: float) -> list[str]:
        """Ids of non-final transactions accepted longer ago than that."""
        ...


class History(Protocol):
    async def page(
        self, owner_id: str, before: int | None, limit: int
    ) -> tuple[list[str], int | None]: ...


class Ledger(Protocol):
    async def describe(self, account_id: str) -> AccountInfo | None: ...

    async def post(
        self,
        transaction: Transaction,
        step: str,
        debit_account_id: str,
        credit_account_id: str,
        authorised_by: str | None,
    ) -> PostingOutcome:
        """One atomic posting, once per (transaction, step) whatever the retries.

        Raises a kaya787_kit.errors refusal (NotFound, Invalid) when the ledger refuses the
        request itself (nothing written), another exception when the ledger could
        not be reached (the caller retries: the posting is applied at most once).
        """
        ...


@dataclass(frozen=True)
class PartnerOutcome:
    ok: bool
    reason: str | None = None


class Partner(Protocol):
    """The payment partner (bank or card rail) outside the ledger."""

    async def collect(self, transaction: Transaction) -> PartnerOutcome:
        """Pull a pay-in from the customer's card/bank; idempotent per transaction."""
        ...

    async def pay_out(self, transaction: Transaction) -> PartnerOutcome:
        """Pay a withdrawal out to the customer's bank; idempotent per transaction."""
        ...


class SagaStarter(Protocol):
    async def start(self, transaction: Transaction) -> None:
        """Start the rail saga for it; starting one that already runs is a no-op. Raises
        SagaNotStarted when the workflow runtime cannot be reached."""
        ...

    async def restart(self, transaction: Transaction) -> bool:
        """Start it again if its saga is gone or failed; True when it was restarted."""
        ...


class RefundAlarm(Protocol):
    def refund_refused(self, transaction: Transaction) -> None:
        """A payout's refund was refused: the customer's money is held (alerted on)."""
        ...
