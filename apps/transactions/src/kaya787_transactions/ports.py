"""What the transactions use cases need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kaya787_transactions.domain import Transaction


@dataclass(frozen=True)
class AccountInfo:
    id: str
    owner_id: str
    currency: str
    kind: str


@dataclass(frozen=True)
class PostingOutcome:
    """`accepted` false means the ledger said no for good (no retry will change it)."""

    accepted: bool
    code: str | None = None


class TransactionStore(Protocol):
    async def get(self, transaction_id: str) -> tuple[Transaction, str] | None: ...

    async def insert(self, transaction: Transaction) -> None:
        """Create it; raises EtagConflict if it already exists."""
        ...

    async def finish(self, transaction: Transaction, etag: str) -> None:
        """Store the final state (its event is published by the saga's next step)."""
        ...


class IdempotencyKeys(Protocol):
    async def get(self, owner_id: str, key: str) -> dict[str, str] | None: ...

    async def claim(self, owner_id: str, key: str, fingerprint: str, transaction_id: str) -> None:
        """Insert-only; raises EtagConflict when the key was claimed first."""
        ...


class History(Protocol):
    async def append(self, owner_id: str, transaction_id: str) -> None: ...

    async def page(
        self, owner_id: str, before: int | None, limit: int
    ) -> tuple[list[str], int | None]: ...


class Ledger(Protocol):
    async def describe(self, account_id: str) -> AccountInfo | None: ...

    async def post(
        self, side: str, transaction: Transaction, step: str, account_id: str
    ) -> PostingOutcome:
        """Debit or credit one account for `transaction`; idempotent per step."""
        ...


class WorkflowStarter(Protocol):
    async def start(self, transaction: Transaction) -> None:
        """Start the saga for it; starting one that already runs is a no-op."""
        ...
