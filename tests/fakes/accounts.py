"""A fake of accounts' AccountRepository: a dict that commits all-or-nothing like the
ledger's store (a stale ETag or an existing insert-only key fails the whole commit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kaya787_accounts.domain import Account, Applied, PostingRecord
from kaya787_kit.concurrency import EtagConflict, Versioned
from kaya787_kit.outbox_event import OutboxEvent


class FakeAccounts:
    def __init__(self, *accounts: Account, conflicts: int = 0) -> None:
        self.rows: dict[str, tuple[Account, int]] = {a.id: (a, 1) for a in accounts}
        self.postings: dict[str, PostingRecord] = {}
        self.entry_log: dict[tuple[str, int], dict[str, Any]] = {}
        self.events: list[OutboxEvent] = []
        self.owners: dict[str, list[str]] = {}
        self.conflicts = conflicts  # commits to fail with EtagConflict before one succeeds
        self.commits = 0

    async def get(self, account_id: str) -> Versioned[Account] | None:
        row = self.rows.get(account_id)
        return None if row is None else Versioned(row[0], str(row[1]))

    async def get_many(self, account_ids: Sequence[str]) -> dict[str, Versioned[Account]]:
        return {
            i: Versioned(r[0], str(r[1]))
            for i in account_ids
            if (r := self.rows.get(i)) is not None
        }

    async def open(self, account: Account, event: OutboxEvent) -> None:
        if account.id in self.rows:
            raise EtagConflict(account.id)
        self.rows[account.id] = (account, 1)
        self.owners.setdefault(account.owner_id, []).append(account.id)
        self.events.append(event)

    async def posting(self, posting_id: str) -> PostingRecord | None:
        return self.postings.get(posting_id)

    async def for_posting(
        self, posting_id: str, account_ids: Sequence[str]
    ) -> tuple[PostingRecord | None, dict[str, Versioned[Account]]]:
        return await self.posting(posting_id), await self.get_many(account_ids)

    async def commit(
        self, applied: Applied, etags: dict[str, str | None], event: OutboxEvent
    ) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise EtagConflict("injected")
        for account in applied.accounts:
            row, etag = self.rows.get(account.id), etags.get(account.id)
            if (row is None) != (etag is None) or (row is not None and str(row[1]) != etag):
                raise EtagConflict(account.id)
        if applied.record.id in self.postings or any(
            (i, seq) in self.entry_log for i, seq, _ in applied.entries
        ):
            raise EtagConflict(applied.record.id)
        for account in applied.accounts:
            version = self.rows[account.id][1] + 1 if account.id in self.rows else 1
            self.rows[account.id] = (account, version)
        for account_id, seq, entry in applied.entries:
            self.entry_log[(account_id, seq)] = entry
        self.postings[applied.record.id] = applied.record
        self.events.append(event)
        self.commits += 1

    async def entries(
        self, account: Account, before: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        top = account.entries if before is None else min(before, account.entries)
        seqs = list(range(top - 1, max(-1, top - 1 - limit), -1))
        return [self.entry_log[(account.id, s)] for s in seqs], (
            seqs[-1] if seqs and seqs[-1] > 0 else None
        )

    async def owned(self, owner_id: str) -> list[str]:
        return list(self.owners.get(owner_id, []))
