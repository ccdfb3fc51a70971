"""Dapr state implementation of the accounts ports."""

from __future__ import annotations

from typing import Any

from kaya787_kit.append_log import materialise_last, read_page
from kaya787_kit.state import OUTBOX_PROJECTION, DaprStateStore, Put, retry_on_conflict

from kaya787_accounts.domain import Account


class DaprAccounts:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def get(self, account_id: str) -> tuple[Account, str] | None:
        found = await self._state.get(f"account:{account_id}")
        if found is None:
            return None
        return Account.from_json(found.value), found.etag

    async def insert(self, account: Account, event: dict[str, Any] | None) -> None:
        key = f"account:{account.id}"
        if event is None:
            await self._state.save(key, account.to_json(), etag=None)
            return
        # The record and its event commit together (Dapr outbox on this store).
        await self._state.transact(
            [Put(key, account.to_json()), Put(key, event, metadata=OUTBOX_PROJECTION)]
        )

    async def save(self, account: Account, etag: str) -> None:
        await self._state.save(f"account:{account.id}", account.to_json(), etag)

    async def materialise_last_entry(self, account: Account) -> None:
        await materialise_last(self._state, f"entry:{account.id}", account.head)

    async def entries(
        self, account: Account, before: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        return await read_page(
            self._state, f"entry:{account.id}", account.head, before=before, limit=limit
        )

    async def add_owned(self, owner_id: str, account_id: str) -> None:
        key = f"owner:{owner_id}"

        async def attempt() -> None:
            found = await self._state.get(key)
            ids = list(found.value["account_ids"]) if found else []
            if account_id not in ids:
                ids.append(account_id)
                await self._state.save(key, {"account_ids": ids}, found.etag if found else None)

        await retry_on_conflict(attempt)

    async def owned(self, owner_id: str) -> list[str]:
        found = await self._state.get(f"owner:{owner_id}")
        return list(found.value["account_ids"]) if found else []
