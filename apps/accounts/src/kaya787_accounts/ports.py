"""What the accounts use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from kaya787_kit.concurrency import Versioned
from kaya787_kit.outbox_event import OutboxEvent

from kaya787_accounts.domain import Account, Applied, PostingRecord


class AccountRepository(Protocol):
    async def get(self, account_id: str) -> Versioned[Account] | None: ...

    async def get_many(self, account_ids: Sequence[str]) -> dict[str, Versioned[Account]]:
        """The documents that exist, by id, with their ETags (one round trip)."""
        ...

    async def open(self, account: Account, event: OutboxEvent) -> None:
        """Create the account, index it under its owner and stage its event, atomically."""
        ...

    async def posting(self, posting_id: str) -> PostingRecord | None: ...

    async def for_posting(
        self, posting_id: str, account_ids: Sequence[str]
    ) -> tuple[PostingRecord | None, dict[str, Versioned[Account]]]:
        """The posting's record if it exists, and get_many(account_ids): one round trip."""
        ...

    async def commit(
        self,
        applied: Applied,
        etags: dict[str, str | None],
        event: OutboxEvent,
    ) -> None:
        """One state transaction: the changed accounts (each at its ETag, None = insert),
        their entries, the posting's record (insert-only) and its event.

        Raises EtagConflict when any of it lost a race; then nothing was written.
        """
        ...

    async def entries(
        self, account: Account, before: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]: ...

    async def owned(self, owner_id: str) -> list[str]: ...
