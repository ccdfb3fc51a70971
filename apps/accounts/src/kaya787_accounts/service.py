"""Accounts use cases: open and read accounts, and post atomic, exactly-once postings."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kaya787_contracts.accounts import AccountOpenedV1, PostingV1
from kaya787_kit.concurrency import EtagConflict, Versioned, retry_on_conflict
from kaya787_kit.errors import AppError, Busy, Invalid, NotFound
from kaya787_kit.ids import is_minted_id
from kaya787_kit.outbox_event import OutboxEvent
from kaya787_kit.trace_context import w3c_fields

from kaya787_accounts.domain import (
    SYSTEM,
    USER,
    Account,
    LedgerError,
    PostingRecord,
    PostingRequest,
    apply,
    check_currency,
    new_system_shard,
    parse_system_account,
    posting_event,
    shard_for,
    shard_ids,
    validate,
)
from kaya787_accounts.ports import AccountRepository

_NOT_FOUND = frozenset({"account_not_found", "destination_account_not_found"})


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _refusal(error: LedgerError) -> AppError:
    kind = NotFound if error.code in _NOT_FOUND else Invalid
    return kind(error.code, error.detail)


def _not_found() -> NotFound:
    # Someone else's account and a missing one look the same.
    return NotFound("account_not_found", "No such account.")


@dataclass(frozen=True)
class PostingResult:
    record: PostingRecord
    duplicate: bool


class AccountsService:
    def __init__(self, accounts: AccountRepository, max_retries: int = 16) -> None:
        self._accounts = accounts
        self._retries = max_retries
        # Postings to one account queue up inside this replica instead of racing for its
        # ETag; the ETag still decides between replicas.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def _locked(self, ids: Sequence[str]) -> AsyncIterator[None]:
        # Always in sorted order, so two postings over the same accounts cannot deadlock.
        async with contextlib.AsyncExitStack() as stack:
            for account_id in sorted(set(ids)):
                lock = self._locks.get(account_id)
                if lock is None:
                    lock = asyncio.Lock()
                    self._locks[account_id] = lock
                await stack.enter_async_context(lock)
            yield

    async def open(self, owner_id: str, currency: str) -> Account:
        try:
            check_currency(currency)
        except LedgerError as exc:
            raise _refusal(exc) from exc
        account = Account(
            id=str(uuid.uuid4()),
            owner_id=owner_id,
            currency=currency,
            kind=USER,
            balance=0,
            created_at=_now(),
        )
        opened = AccountOpenedV1(
            event_id=f"{account.id}:opened",
            account_id=account.id,
            owner_id=owner_id,
            currency=currency,
            opened_at=account.created_at,
        )
        event = OutboxEvent(
            topic=AccountOpenedV1.TOPIC,
            event_id=opened.event_id,
            event_type=opened.event_type,
            partition_key=account.id,
            data=opened.model_dump(mode="json"),
            traceparent=w3c_fields().get("traceparent", ""),
        )
        async with self._locked([f"owner:{owner_id}"]):
            await retry_on_conflict(lambda: self._accounts.open(account, event))
        return account

    async def list_owned(self, owner_id: str) -> list[Account]:
        ids = await self._accounts.owned(owner_id)
        found = await self._accounts.get_many(ids)
        return [found[i].value for i in ids if i in found]

    async def get_owned(self, owner_id: str, account_id: str) -> Account:
        found = await self._accounts.get(account_id) if is_minted_id(account_id) else None
        if found is None or found.value.owner_id != owner_id or found.value.kind != USER:
            raise _not_found()
        return found.value

    async def entries(
        self, owner_id: str, account_id: str, limit: int, cursor: int | None
    ) -> tuple[list[dict[str, Any]], int | None]:
        account = await self.get_owned(owner_id, account_id)
        return await self._accounts.entries(account, cursor, limit)

    async def describe(self, account_id: str) -> dict[str, Any]:
        """Internal: owner, currency and balance of any account (system ones summed)."""
        system = parse_system_account(account_id)
        if system is not None:
            shards = await self._accounts.get_many(shard_ids(account_id))
            return {
                "id": account_id,
                "owner_id": "system",
                "currency": system[1],
                "kind": SYSTEM,
                "balance": sum(shard.value.balance for shard in shards.values()),
            }
        found = await self._accounts.get(account_id) if is_minted_id(account_id) else None
        if found is None:
            raise _not_found()
        account = found.value
        return {
            "id": account.id,
            "owner_id": account.owner_id,
            "currency": account.currency,
            "kind": account.kind,
            "balance": account.balance,
        }

    async def posting(self, posting_id: str) -> PostingRecord:
        found = await self._accounts.posting(posting_id)
        if found is None:
            raise NotFound("posting_not_found", "No such posting.")
        return found

    async def post(self, request: PostingRequest) -> PostingResult:
        """Both legs, the entries, the record and the event commit together, once per id.

        A refusal that nothing can change (unknown account, wrong currency) is a 4xx and
        writes nothing; a rejection that depends on balances is recorded like a success,
        so a retry answers the same even after the balance changed.
        """
        for account_id, code in (
            (request.debit_account_id, "account_not_found"),
            (request.credit_account_id, "destination_account_not_found"),
        ):
            if not is_minted_id(account_id) and parse_system_account(account_id) is None:
                # Names nothing: refused before it can reach a state key.
                raise _refusal(LedgerError(code, "No such account."))
        debit_doc = _document_id(request.debit_account_id, request.id)
        credit_doc = _document_id(request.credit_account_id, request.id)
        async with self._locked([debit_doc, credit_doc]):
            for _ in range(self._retries):
                existing, found = await self._accounts.for_posting(
                    request.id, [debit_doc, credit_doc]
                )
                if existing is not None:
                    return PostingResult(existing, duplicate=True)
                debit = _account_or_shard(found, debit_doc, request)
                credit = _account_or_shard(found, credit_doc, request)
                try:
                    validate(request, debit, credit)
                except LedgerError as exc:
                    raise _refusal(exc) from exc
                assert debit is not None  # validate refuses None
                assert credit is not None
                applied = apply(request, debit, credit, _now())
                etags: dict[str, str | None] = {
                    i: found[i].etag if i in found else None for i in (debit_doc, credit_doc)
                }
                try:
                    await self._accounts.commit(applied, etags, _event(applied.record, request))
                except EtagConflict:
                    continue  # a twin committed this posting, or the accounts moved on
                return PostingResult(applied.record, duplicate=False)
        raise Busy("contention", "The account is busy; retry.")


def _document_id(account_id: str, posting_id: str) -> str:
    """The document a posting touches: the account, or one shard of a system account."""
    if parse_system_account(account_id) is not None:
        return shard_for(account_id, posting_id)
    return account_id


def _account_or_shard(
    found: dict[str, Versioned[Account]], document_id: str, request: PostingRequest
) -> Account | None:
    if document_id in found:
        return found[document_id].value
    system = parse_system_account(document_id.partition("~")[0])
    if system is None or "~" not in document_id:
        return None
    # A shard comes into being on its first posting (inserted, so a twin conflicts).
    return new_system_shard(document_id, system[1], _now())


def _event(record: PostingRecord, request: PostingRequest) -> OutboxEvent:
    payload = posting_event(record)
    return OutboxEvent(
        topic=PostingV1.TOPIC,
        event_id=record.id,
        event_type=payload.event_type,
        partition_key=request.customer_account_id,
        data=payload.model_dump(mode="json"),
        traceparent=w3c_fields().get("traceparent", ""),
    )
