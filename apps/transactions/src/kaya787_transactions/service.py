"""Transactions use cases: accept deposits, withdrawals and transfers exactly once.

A transfer stays inside the ledger: it is one atomic posting, answered at once as
completed or failed. Deposits (pay-ins) and withdrawals (payouts) cross the payment
partner's rail, so they are accepted as pending and finished by a saga (rails.py).
Every money POST needs an Idempotency-Key: the transaction's id is derived from it, so a
retry - the client's, or a sidecar's after a timeout - finds the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kaya787_kit.concurrency import EtagConflict, retry_on_conflict
from kaya787_kit.currencies import MINOR_UNITS, exponent_of
from kaya787_kit.errors import BadRequest, Busy, Invalid, NotFound
from kaya787_kit.ids import is_minted_id
from kaya787_kit.money import minor_limit

from kaya787_transactions.domain import (
    COMPLETED,
    FAILED,
    PARTNER,
    PAYOUTS,
    PENDING,
    Transaction,
    day_of,
    fingerprint,
    system_account_id,
    transaction_id_for,
)
from kaya787_transactions.ports import (
    AccountInfo,
    History,
    Ledger,
    LedgerUnconfirmed,
    SagaNotStarted,
    SagaStarter,
    TransactionStore,
)

_log = logging.getLogger("kaya787.transactions")


@dataclass(frozen=True)
class Submitted:
    transaction: Transaction
    replayed: bool


@dataclass(frozen=True)
class Limits:
    max_major: int  # per transaction, in major units of its currency
    daily_payin_major: int  # deposits per user, day and currency, in major units


class _TwinRecorded(Exception):
    """A twin request (same owner and key) stored the transaction first."""


def _not_found(what: str = "account") -> NotFound:
    # Missing and someone else's look the same.
    return NotFound(f"{what}_not_found", f"No such {what}.")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class TransactionsService:
    def __init__(
        self,
        *,
        store: TransactionStore,
        history: History,
        ledger: Ledger,
        starter: SagaStarter,
        limits: Limits,
    ) -> None:
        self._store = store
        self._history = history
        self._ledger = ledger
        self._starter = starter
        self._limits = limits
        # One owner's records share a history head: their writes queue here.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, owner_id: str) -> asyncio.Lock:
        lock = self._locks.get(owner_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[owner_id] = lock
        return lock

    async def submit(
        self, owner_id: str, kind: str, body: dict[str, Any], idempotency_key: str | None
    ) -> Submitted:
        if idempotency_key is None:
            raise BadRequest(
                "idempotency_key_required",
                "Money-moving requests need an Idempotency-Key header (a unique string per "
                "operation, reused on every retry of it).",
            )
        transaction_id = transaction_id_for(owner_id, idempotency_key)
        print_ = fingerprint(kind, body)
        replayed = await self._replay(transaction_id, print_)
        if replayed is not None:
            return replayed
        amount, currency = int(body["amount"]), str(body["currency"])
        if currency not in MINOR_UNITS:
            raise Invalid("invalid_currency", f"{currency!r} is not an ISO 4217 currency.")
        limit = minor_limit(exponent_of(currency), self._limits.max_major)
        if amount > limit:
            raise Invalid(
                "amount_over_limit",
                f"One {kind} may move at most {limit} minor units of {currency}.",
            )
        if kind == "transfer":
            return await self._transfer(transaction_id, owner_id, body, print_)
        return await self._rail(transaction_id, owner_id, kind, body, print_)

    async def _replay(self, transaction_id: str, print_: str) -> Submitted | None:
        found = await self._store.get(transaction_id)
        if found is None:
            return None
        existing = found.value
        if existing.fingerprint and existing.fingerprint != print_:
            raise Invalid(
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            )
        if existing.status == PENDING and existing.kind != "transfer":
            await self._start_saga(existing)  # a no-op unless its saga never started
        return Submitted(existing, replayed=True)

    async def _start_saga(self, transaction: Transaction) -> None:
        try:
            await self._starter.start(transaction)
        except SagaNotStarted:
            # Accepted all the same: the pending record stands, and a replay of its key
            # or the reconciler (sagas gone or never started) starts the saga later.
            _log.warning("saga of %s not started; the reconciler will", transaction.id)

    async def _transfer(
        self, transaction_id: str, owner_id: str, body: dict[str, Any], print_: str
    ) -> Submitted:
        transaction = Transaction(
            id=transaction_id,
            kind="transfer",
            owner_id=owner_id,
            debit_account_id=str(body["source_account_id"]),
            credit_account_id=str(body["destination_account_id"]),
            amount=int(body["amount"]),
            currency=str(body["currency"]),
            status=PENDING,
            created_at=_now(),
            fingerprint=print_,
        )
        try:
            outcome = await self._ledger.post(
                transaction,
                "transfer",
                transaction.debit_account_id,
                transaction.credit_account_id,
                authorised_by=owner_id,
            )
        except LedgerUnconfirmed as exc:
            # Applied or not, the posting id makes a retry with the same key apply it once.
            raise Busy(
                "ledger_unconfirmed",
                "The ledger did not confirm the transfer; retry with the same Idempotency-Key.",
            ) from exc
        final = transaction.finish(COMPLETED if outcome.committed else FAILED, outcome.code, _now())
        return await self._record(final, print_)

    async def _record(self, transaction: Transaction, print_: str) -> Submitted:
        """Store it; if a twin request stored it first, answer with theirs."""
        async with self._lock(transaction.owner_id):
            try:
                # The record is inserted: a twin's record makes this a conflict, and so does
                # another replica moving the owner's history on; only the latter is retried.
                await retry_on_conflict(lambda: self._create(transaction), attempts=4)
                return Submitted(transaction, replayed=False)
            except (EtagConflict, _TwinRecorded):
                pass
        replayed = await self._replay(transaction.id, print_)
        if replayed is None:
            # The posting stands in the ledger; a retry with the key records it.
            raise Busy("contention", "The history is busy; retry.")
        return replayed

    async def _create(self, transaction: Transaction) -> None:
        try:
            await self._store.create(transaction)
        except EtagConflict:
            if await self._store.get(transaction.id) is not None:
                raise _TwinRecorded from None
            raise

    async def _rail(
        self, transaction_id: str, owner_id: str, kind: str, body: dict[str, Any], print_: str
    ) -> Submitted:
        currency, amount = str(body["currency"]), int(body["amount"])
        account = await self._own(owner_id, str(body["account_id"]))
        _same_currency(account, currency)
        if kind == "deposit":
            debit, credit = system_account_id(PARTNER, currency), account.id
        else:
            debit, credit = account.id, system_account_id(PAYOUTS, currency)
        transaction = Transaction(
            id=transaction_id,
            kind=kind,
            owner_id=owner_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=currency,
            status=PENDING,
            created_at=_now(),
            fingerprint=print_,
        )
        async with self._lock(owner_id):
            await retry_on_conflict(lambda: self._create_rail(transaction), attempts=6)
        found = await self._store.get(transaction.id)
        if found is not None and found.value.created_at != transaction.created_at:
            replayed = await self._replay(transaction.id, print_)
            assert replayed is not None
            return replayed
        await self._start_saga(transaction)
        return Submitted(transaction, replayed=False)

    async def _create_rail(self, transaction: Transaction) -> None:
        if await self._store.get(transaction.id) is not None:
            return  # a twin request created it
        if transaction.kind != "deposit":
            await self._store.create(transaction)
            return
        limit = minor_limit(exponent_of(transaction.currency), self._limits.daily_payin_major)
        current, etag = await self._store.daily_usage(
            transaction.owner_id, day_of(transaction.created_at), transaction.currency
        )
        await self._store.create(transaction, current.plus(transaction.amount, limit), etag)

    async def _own(self, owner_id: str, account_id: str) -> AccountInfo:
        info = await self._ledger.describe(account_id)
        if info is None or info.owner_id != owner_id or info.kind != "user":
            raise _not_found()
        return info

    async def get(self, owner_id: str, transaction_id: str) -> Transaction:
        if not is_minted_id(transaction_id):
            raise _not_found("transaction")  # names nothing: no store call
        found = await self._store.get(transaction_id)
        if found is None or found.value.owner_id != owner_id:
            raise _not_found("transaction")
        return found.value

    async def history(
        self, owner_id: str, account_id: str | None, limit: int, cursor: int | None
    ) -> tuple[list[Transaction], int | None]:
        ids, next_cursor = await self._history.page(owner_id, cursor, limit)
        seen: set[str] = set()
        items = []
        for transaction_id in ids:
            found = await self._store.get(transaction_id)
            if found is None or transaction_id in seen:
                continue
            seen.add(transaction_id)
            txn = found.value
            if account_id is None or account_id in (txn.debit_account_id, txn.credit_account_id):
                items.append(txn)
        return items, next_cursor

    async def reconcile(self, older_than_seconds: float) -> tuple[int, int]:
        """Drive every transaction pending for longer than that to an end.

        Its saga is started again when it is gone or failed (every step is idempotent);
        one still running is left to finish. Returns (overdue, restarted).
        """
        overdue = await self._store.overdue(older_than_seconds)
        restarted = 0
        for transaction_id in overdue:
            found = await self._store.get(transaction_id)
            if found is None or found.value.status != PENDING:
                continue
            try:
                if await self._starter.restart(found.value):
                    restarted += 1
                    _log.warning("restarted the saga of %s", transaction_id)
            except Exception as exc:  # the next round tries again
                _log.warning("could not restart %s: %s", transaction_id, exc)
        return len(overdue), restarted


def _same_currency(account: AccountInfo, currency: str) -> None:
    if account.currency != currency:
        raise Invalid(
            "currency_mismatch",
            f"Account {account.id} is in {account.currency}, not {currency}.",
        )
