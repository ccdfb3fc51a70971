"""What the accounts use cases need from the outside world."""

from __future__ import annotations

from typing import Any, Protocol

from kaya787_accounts.domain import Account


class AccountRepository(Protocol):
    async def get(self, account_id: str) -> tuple[Account, str] | None: ...

    async def insert(self, account: Account, event: dict[str, Any] | None) -> None:
        """Create the account (and publish `event` with it); EtagConflict if it exists."""
        ...

    async def save(self, account: Account, etag: str) -> None:
        """Replace the account if still at `etag`; raises EtagConflict otherwise."""
        ...

    async def materialise_last_entry(self, account: Account) -> None: ...

    async def entries(
        self, account: Account, before: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]: ...

    async def add_owned(self, owner_id: str, account_id: str) -> None: ...

    async def owned(self, owner_id: str) -> list[str]: ...
