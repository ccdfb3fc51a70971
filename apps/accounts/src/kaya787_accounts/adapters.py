"""Dapr state implementation of the accounts ports (a store with transaction rollback)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kaya787_kit.concurrency import Versioned
from kaya787_kit.outbox import Outbox, head_key
from kaya787_kit.outbox_event import OutboxEvent
from kaya787_kit.state import DaprStateStore, Put

from kaya787_accounts.domain import Account, Applied, PostingRecord


def account_key(account_id: str) -> str:
    return f"account:{account_id}"


def entry_key(account_id: str, seq: int) -> str:
    return f"entry:{account_id}:{seq:012d}"


def posting_key(posting_id: str) -> str:
    return f"posting:{posting_id}"


class DaprAccounts:
    def __init__(self, state: DaprStateStore, outbox: Outbox) -> None:
        self._state = state
        self._outbox = outbox

    async def get(self, account_id: str) -> Versioned[Account] | None:
        found = await self._state.get(account_key(account_id))
        if found is None:
            return None
        return Versioned(Account.from_json(found.value), found.etag)

    async def get_many(self, account_ids: Sequence[str]) -> dict[str, Versioned[Account]]:
        return (await self.for_posting(None, account_ids))[1]

    async def for_posting(
        self, posting_id: str | None, account_ids: Sequence[str]
    ) -> tuple[PostingRecord | None, dict[str, Versioned[Account]]]:
        keys = [account_key(i) for i in account_ids]
        # Only the accounts' absence is confirmed: a record missed here is found by the
        # insert-only write of the record, which then conflicts.
        record = [] if posting_id is None else [posting_key(posting_id)]
        found = await self._state.bulk_get([*record, *keys], confirm_missing=keys)
        posted = found.get(record[0]) if record else None
        return (
            None if posted is None else PostingRecord.from_json(posted.value),
            {
                i: Versioned(Account.from_json(v.value), v.etag)
                for i in account_ids
                if (v := found.get(account_key(i))) is not None
            },
        )

    async def _transact_with(self, puts: list[Put], event: OutboxEvent) -> None:
        partition = self._outbox.partition_of(event.partition_key)
        async with self._outbox.lock(partition):
            head = await self._state.get(head_key(partition))
            staged, first = self._outbox.stage(partition, head, [event])
            await self._state.transact([*puts, *staged])
        self._outbox.committed(partition, first, [event])

    async def open(self, account: Account, event: OutboxEvent) -> None:
        index_key = f"owner:{account.owner_id}"
        index = await self._state.get(index_key)
        ids = list(index.value["account_ids"]) if index else []
        await self._transact_with(
            [
                Put(index_key, {"account_ids": [*ids, account.id]}, index.etag if index else None),
                Put(account_key(account.id), account.to_json()),
            ],
            event,
        )

    async def posting(self, posting_id: str) -> PostingRecord | None:
        found = await self._state.get(posting_key(posting_id))
        return None if found is None else PostingRecord.from_json(found.value)

    async def commit(
        self, applied: Applied, etags: dict[str, str | None], event: OutboxEvent
    ) -> None:
        puts = [Put(account_key(a.id), a.to_json(), etags.get(a.id)) for a in applied.accounts]
        puts += [Put(entry_key(i, seq), entry) for i, seq, entry in applied.entries]
        puts.append(Put(posting_key(applied.record.id), applied.record.to_json()))
        await self._transact_with(puts, event)

    async def entries(
        self, account: Account, before: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first: entries with seq < `before` (all when None), and the next cursor."""
        top = account.entries if before is None else max(0, min(before, account.entries))
        seqs = list(range(top - 1, max(-1, top - 1 - limit), -1))
        found = await self._state.bulk_get([entry_key(account.id, s) for s in seqs])
        items = [found[k].value for s in seqs if (k := entry_key(account.id, s)) in found]
        next_cursor = seqs[-1] if seqs and seqs[-1] > 0 else None
        return items, next_cursor

    async def owned(self, owner_id: str) -> list[str]:
        found = await self._state.get(f"owner:{owner_id}")
        return list(found.value["account_ids"]) if found else []
