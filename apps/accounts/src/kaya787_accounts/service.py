"""Accounts use cases: open and read accounts, and post idempotent ledger steps."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kaya787_kit.problems import Problem
from kaya787_kit.state import EtagConflict, retry_on_conflict

from kaya787_accounts.currencies import MINOR_UNITS
from kaya787_accounts.domain import (
    SYSTEM,
    USER,
    Account,
    LedgerError,
    Posting,
    check_currency,
    funding_account_id,
    post,
)
from kaya787_accounts.ports import AccountRepository

_STATUS = {
    "insufficient_funds": 409,
    "currency_mismatch": 422,
    "invalid_currency": 422,
    "invalid_amount": 422,
}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _problem(error: LedgerError) -> Problem:
    return Problem(_STATUS.get(error.code, 422), error.code, error.detail)


def _not_found() -> Problem:
    # Someone else's account and a missing one look the same.
    return Problem(404, "account_not_found", "No such account.")


@dataclass(frozen=True)
class PostingResult:
    balance_after: int
    duplicate: bool


class AccountsService:
    def __init__(self, accounts: AccountRepository, max_retries: int = 16) -> None:
        self._accounts = accounts
        self._retries = max_retries
        # Postings to one account queue up inside this replica instead of racing for its
        # ETag; the ETag still decides between replicas.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, account_id: str) -> asyncio.Lock:
        lock = self._locks.get(account_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[account_id] = lock
        return lock

    async def open(self, owner_id: str, currency: str) -> Account:
        try:
            check_currency(currency)
        except LedgerError as exc:
            raise _problem(exc) from exc
        account = Account(
            id=str(uuid.uuid4()),
            owner_id=owner_id,
            currency=currency,
            kind=USER,
            balance=0,
            created_at=_now(),
        )
        # Index first: a crash before the insert leaves an id that lists as nothing.
        await self._accounts.add_owned(owner_id, account.id)
        await self._accounts.insert(
            account,
            {
                "event_type": "accounts.account-opened.v1",
                "event_id": f"{account.id}:opened",
                "account_id": account.id,
                "owner_id": owner_id,
                "currency": currency,
                "opened_at": account.created_at,
            },
        )
        return account

    async def list_owned(self, owner_id: str) -> list[Account]:
        found = [await self._accounts.get(i) for i in await self._accounts.owned(owner_id)]
        return [account for account, _ in filter(None, found)]

    async def get_owned(self, owner_id: str, account_id: str) -> Account:
        found = await self._accounts.get(account_id)
        if found is None or found[0].owner_id != owner_id:
            raise _not_found()
        return found[0]

    async def entries(
        self, owner_id: str, account_id: str, limit: int, cursor: int | None
    ) -> tuple[list[dict[str, Any]], int | None]:
        account = await self.get_owned(owner_id, account_id)
        return await self._accounts.entries(account, cursor, limit)

    async def describe(self, account_id: str) -> dict[str, str]:
        """Internal: who owns an account and in which currency (funding accounts included)."""
        account = await self._load(account_id)
        return {
            "id": account.id,
            "owner_id": account.owner_id,
            "currency": account.currency,
            "kind": account.kind,
        }

    async def _load(self, account_id: str) -> Account:
        found = await self._accounts.get(account_id)
        if found is not None:
            return found[0]
        currency = account_id.removeprefix("funding-").upper()
        if account_id != funding_account_id(currency) or currency not in MINOR_UNITS:
            raise _not_found()
        funding = Account(
            id=account_id,
            owner_id="system",
            currency=currency,
            kind=SYSTEM,
            balance=0,
            created_at=_now(),
        )
        with contextlib.suppress(EtagConflict):  # created concurrently: fine
            await self._accounts.insert(funding, None)
        found = await self._accounts.get(account_id)
        assert found is not None
        return found[0]

    async def apply(self, posting: Posting) -> PostingResult:
        """Post one step; the same step again is a no-op that returns the same result."""
        await self._load(posting.account_id)

        async def attempt() -> PostingResult:
            found = await self._accounts.get(posting.account_id)
            if found is None:
                raise _not_found()
            account, etag = found
            if posting.step_id in account.applied:
                return PostingResult(account.applied[posting.step_id], duplicate=True)
            try:
                updated, _ = post(account, posting, _now())
            except LedgerError as exc:
                raise _problem(exc) from exc
            await self._accounts.materialise_last_entry(account)
            await self._accounts.save(updated, etag)
            await self._accounts.materialise_last_entry(updated)
            return PostingResult(updated.balance, duplicate=False)

        try:
            async with self._lock(posting.account_id):
                return await retry_on_conflict(attempt, attempts=self._retries)
        except EtagConflict as exc:
            raise Problem(
                503, "contention", "The account is busy; retry.", headers={"Retry-After": "1"}
            ) from exc
