"""Dapr implementations of the transactions ports (a store with transaction rollback)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from kaya787_kit.circuit_breaker import CircuitBreaker, guarded_call
from kaya787_kit.concurrency import Versioned
from kaya787_kit.ids import is_minted_id, url_segment
from kaya787_kit.problems import error_for_status
from kaya787_kit.state import DaprStateStore, Put, ttl

from kaya787_transactions.domain import PENDING, DailyUsage, Transaction
from kaya787_transactions.ports import (
    AccountInfo,
    LedgerUnconfirmed,
    PartnerOutcome,
    PostingOutcome,
)

# Non-final transactions are listed in this many documents, so that the reconciler can
# find them (a state store cannot be scanned) without one hot list.
PENDING_SHARDS = 8
# A day's pay-in counter outlives its day by a week (for support questions), then goes.
USAGE_TTL_SECONDS = 8 * 24 * 3600


def _pending_key(transaction_id: str) -> str:
    return f"pending:{zlib.crc32(transaction_id.encode()) % PENDING_SHARDS}"


def _history_item(owner_id: str, seq: int) -> str:
    return f"history:{owner_id}:{seq:012d}"


class DaprTransactions:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def get(self, transaction_id: str) -> Versioned[Transaction] | None:
        found = await self._state.get(f"txn:{transaction_id}")
        return None if found is None else Versioned(Transaction.from_json(found.value), found.etag)

    async def daily_usage(
        self, owner_id: str, day: str, currency: str
    ) -> tuple[DailyUsage, str | None]:
        found = await self._state.get(f"payin-day:{owner_id}:{day}:{currency}")
        if found is None:
            return DailyUsage(), None
        return DailyUsage(int(found.value["total"]), int(found.value["count"])), found.etag

    async def create(
        self,
        transaction: Transaction,
        usage: DailyUsage | None = None,
        usage_etag: str | None = None,
    ) -> None:
        owner = transaction.owner_id
        pending = transaction.status == PENDING
        shard = _pending_key(transaction.id)
        async with self._lock(shard) if pending else contextlib.nullcontext():
            keys = [f"history:{owner}", *([shard] if pending else [])]
            found = await self._state.bulk_get(keys)
            head = found.get(f"history:{owner}")
            seq = int(head.value.get("count", 0)) if head else 0
            ops = [
                Put(f"txn:{transaction.id}", transaction.to_json()),
                Put(f"history:{owner}", {"count": seq + 1}, head.etag if head else None),
                Put(_history_item(owner, seq), {"transaction_id": transaction.id}),
            ]
            if pending:
                ops.append(_pending_put(found.get(shard), shard, transaction, add=True))
            if usage is not None:
                key = f"payin-day:{owner}:{transaction.created_at[:10]}:{transaction.currency}"
                ops.append(
                    Put(
                        key,
                        {"total": usage.total, "count": usage.count},
                        usage_etag,
                        ttl(USAGE_TTL_SECONDS),
                    )
                )
            await self._state.transact(ops)

    async def finish(self, transaction: Transaction, etag: str) -> None:
        shard = _pending_key(transaction.id)
        async with self._lock(shard):
            listed = await self._state.get(shard)
            ops = [Put(f"txn:{transaction.id}", transaction.to_json(), etag)]
            if listed is not None and transaction.id in listed.value:
                ops.append(_pending_put(listed, shard, transaction, add=False))
            await self._state.transact(ops)

    async def overdue(self, older_than_seconds: float) -> list[str]:
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_seconds)).isoformat()
        shards = await self._state.bulk_get([f"pending:{k}" for k in range(PENDING_SHARDS)])
        return sorted(
            transaction_id
            for shard in shards.values()
            for transaction_id, created_at in shard.value.items()
            if str(created_at) < cutoff
        )


def _pending_put(
    listed: Versioned[Any] | None, shard: str, transaction: Transaction, add: bool
) -> Put:
    ids: dict[str, Any] = dict(listed.value) if listed is not None else {}
    if add:
        ids[transaction.id] = transaction.created_at
    else:
        ids.pop(transaction.id, None)
    return Put(shard, ids, listed.etag if listed is not None else None)


class DaprHistory:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def page(
        self, owner_id: str, before: int | None, limit: int
    ) -> tuple[list[str], int | None]:
        """Newest first: ids with seq < `before` (all when None), and the next cursor."""
        head = await self._state.get(f"history:{owner_id}")
        count = int(head.value.get("count", 0)) if head else 0
        top = count if before is None else max(0, min(before, count))
        seqs = list(range(top - 1, max(-1, top - 1 - limit), -1))
        found = await self._state.bulk_get([_history_item(owner_id, s) for s in seqs])
        ids = [
            str(found[k].value["transaction_id"])
            for s in seqs
            if (k := _history_item(owner_id, s)) in found
        ]
        return ids, (seqs[-1] if seqs and seqs[-1] > 0 else None)


# The code of accounts' load-shedding 503 (kaya787_kit.load_shedding).
_SHED = "overloaded"


def accounts_failing(response: httpx.Response) -> bool:
    """Whether an answer through the sidecar counts against accounts in the breaker: a 5xx
    does (accounts failing, or Dapr's own 500 when it cannot reach the app); a refusal
    (4xx) does not, accounts answered it; nor does shedding (503 `overloaded`: alive, and
    answering at once is what the breaker would do for it)."""
    return response.status_code >= 500 and _problem_code(response) != _SHED


def _problem_code(response: httpx.Response) -> str | None:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(response.json()["code"])
    return None


class InvokedLedger:
    """accounts' internal API through our sidecar (only transactions may call it).

    Every call goes through `breaker` (one per process, shared by the API and the sagas):
    while accounts is down it raises CircuitOpen at once instead of calling. Each call
    ends within `timeout` seconds.
    """

    def __init__(
        self,
        sidecar_http: httpx.AsyncClient,
        accounts_app_id: str,
        *,
        breaker: CircuitBreaker | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._http = sidecar_http
        self._base = f"/v1.0/invoke/{url_segment(accounts_app_id)}/method/internal"
        self._breaker = breaker or CircuitBreaker(accounts_app_id)
        self._timeout = timeout

    async def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async def call() -> httpx.Response:
            return await self._http.request(
                method, f"{self._base}/{path}", json=body, timeout=self._timeout
            )

        return await guarded_call(self._breaker, call, accounts_failing)

    async def describe(self, account_id: str) -> AccountInfo | None:
        if not is_minted_id(account_id):
            return None  # names no customer account: nothing to ask
        response = await self._call("GET", f"accounts/{url_segment(account_id)}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data = response.json()
        return AccountInfo(
            str(data["id"]), str(data["owner_id"]), str(data["currency"]), str(data["kind"])
        )

    async def post(
        self,
        transaction: Transaction,
        step: str,
        debit_account_id: str,
        credit_account_id: str,
        authorised_by: str | None,
    ) -> PostingOutcome:
        try:
            response = await self._call(
                "POST",
                "postings",
                {
                    "id": transaction.posting_id(step),
                    "transaction_id": transaction.id,
                    "kind": transaction.kind,
                    "step": step,
                    "debit_account_id": debit_account_id,
                    "credit_account_id": credit_account_id,
                    "amount": transaction.amount,
                    "currency": transaction.currency,
                    "authorised_by": authorised_by,
                    "created_at": transaction.created_at,
                },
            )
        except httpx.TransportError as exc:
            # Timed out or cut off: the posting may have been applied or not.
            raise LedgerUnconfirmed(
                f"{step} of {transaction.id}: {type(exc).__name__} from the sidecar"
            ) from exc
        if response.status_code in (404, 422):
            code, detail = "rejected", response.text[:200]
            with contextlib.suppress(ValueError, KeyError, TypeError):
                body = response.json()
                code, detail = str(body["code"]), str(body.get("detail", detail))
            raise error_for_status(response.status_code, code, detail)
        # Only the ledger's explicit answer counts. Anything else (a 5xx, or a 2xx without
        # the ledger's body, as a sidecar can give when the app died mid-call) is transient:
        # the caller retries, and the posting is applied at most once either way.
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if response.status_code == 200:
                body = response.json()
                if body["status"] in ("committed", "rejected"):
                    return PostingOutcome(body["status"] == "committed", body.get("code"))
        raise LedgerUnconfirmed(
            f"{step} of {transaction.id}: HTTP {response.status_code} {response.text[:200]}"
        )


class InvokedPartner:
    """The payment partner (simulator) through our sidecar."""

    def __init__(self, sidecar_http: httpx.AsyncClient, partner_app_id: str) -> None:
        self._http = sidecar_http
        self._base = f"/v1.0/invoke/{url_segment(partner_app_id)}/method/internal"

    async def _call(self, path: str, transaction: Transaction) -> PartnerOutcome:
        response = await self._http.post(
            f"{self._base}/{path}",
            json={
                "id": transaction.id,
                "account_id": transaction.customer_account_id(),
                "owner_id": transaction.owner_id,
                "amount": transaction.amount,
                "currency": transaction.currency,
            },
        )
        if response.status_code != 200:
            raise RuntimeError(f"partner {path} {transaction.id}: HTTP {response.status_code}")
        body = response.json()
        return PartnerOutcome(ok=bool(body["ok"]), reason=body.get("reason"))

    async def collect(self, transaction: Transaction) -> PartnerOutcome:
        return await self._call("payins", transaction)

    async def pay_out(self, transaction: Transaction) -> PartnerOutcome:
        return await self._call("payouts", transaction)
