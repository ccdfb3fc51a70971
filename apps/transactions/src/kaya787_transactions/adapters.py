"""Dapr implementations of the transactions ports."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from kaya787_kit.append_log import materialise_last, read_page
from kaya787_kit.state import DaprStateStore, retry_on_conflict

from kaya787_transactions.domain import Transaction
from kaya787_transactions.events import TOPIC
from kaya787_transactions.ports import AccountInfo, PostingOutcome

# Ledger answers that no retry will change (the workflow fails the transaction on them).
_FINAL_REJECTIONS = {404, 409, 422}


class LedgerUnconfirmed(RuntimeError):
    """The ledger did not confirm a posting; the workflow retries the step."""


class DaprTransactions:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def get(self, transaction_id: str) -> tuple[Transaction, str] | None:
        found = await self._state.get(f"txn:{transaction_id}")
        return None if found is None else (Transaction.from_json(found.value), found.etag)

    async def insert(self, transaction: Transaction) -> None:
        await self._state.save(f"txn:{transaction.id}", transaction.to_json(), etag=None)

    async def finish(self, transaction: Transaction, etag: str) -> None:
        await self._state.save(f"txn:{transaction.id}", transaction.to_json(), etag)


class DaprOutcomeFeed:
    """Transaction outcomes on transactions.events.v1, keyed by the customer's account.

    The saga publishes them itself, after the final state is stored, and retries until the
    broker takes them (at least once). Not Dapr's outbox: it cannot set a partition key,
    and in Dapr 1.18 a duplicated internal outbox message makes its relay retry without
    end (its backoff has no stop), which on Kafka blocks the whole partition.
    The CloudEvent id is the event's stable id, so a repeated publish is the same event
    to every consumer (they dedupe on it).
    """

    def __init__(self, http: httpx.AsyncClient, pubsub: str) -> None:
        self._http = http
        self._pubsub = pubsub

    async def publish(self, transaction: Transaction) -> None:
        event = transaction.event()
        response = await self._http.post(
            f"/v1.0/publish/{self._pubsub}/{TOPIC}",
            json=event,
            params={
                "metadata.partitionKey": transaction.customer_account_id(),
                "metadata.cloudevent.id": str(event["event_id"]),
                "metadata.cloudevent.type": str(event["event_type"]),
            },
        )
        if response.status_code != 204:
            raise RuntimeError(f"publish to {TOPIC} failed: {response.status_code}")


class DaprIdempotencyKeys:
    def __init__(self, state: DaprStateStore, ttl_seconds: int = 7 * 24 * 3600) -> None:
        self._state = state
        self._ttl = ttl_seconds

    async def get(self, owner_id: str, key: str) -> dict[str, str] | None:
        found = await self._state.get(f"idem:{owner_id}:{key}")
        return None if found is None else dict(found.value)

    async def claim(self, owner_id: str, key: str, fingerprint: str, transaction_id: str) -> None:
        await self._state.save(
            f"idem:{owner_id}:{key}",
            {"fingerprint": fingerprint, "transaction_id": transaction_id},
            etag=None,
            metadata={"ttlInSeconds": str(self._ttl)},
        )


class DaprHistory:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def append(self, owner_id: str, transaction_id: str) -> None:
        head_key, prefix = f"history:{owner_id}", f"history:{owner_id}"

        async def attempt() -> None:
            found = await self._state.get(head_key)
            head: dict[str, Any] = dict(found.value) if found else {"count": 0}
            await materialise_last(self._state, prefix, head)
            seq = int(head.get("count", 0))
            new = {"count": seq + 1, "last": {"transaction_id": transaction_id, "seq": seq}}
            await self._state.save(head_key, new, found.etag if found else None)
            await materialise_last(self._state, prefix, new)

        await retry_on_conflict(attempt, attempts=6)

    async def contains(self, owner_id: str, transaction_id: str) -> bool:
        """Whether the newest entry is this one (a retried step after a crash)."""
        found = await self._state.get(f"history:{owner_id}")
        last = found.value.get("last") if found else None
        return bool(last and last.get("transaction_id") == transaction_id)

    async def page(
        self, owner_id: str, before: int | None, limit: int
    ) -> tuple[list[str], int | None]:
        found = await self._state.get(f"history:{owner_id}")
        if found is None:
            return [], None
        items, cursor = await read_page(
            self._state, f"history:{owner_id}", found.value, before=before, limit=limit
        )
        return [str(i["transaction_id"]) for i in items], cursor


class InvokedLedger:
    """accounts' internal API through our sidecar (only transactions may call it)."""

    def __init__(self, sidecar_http: httpx.AsyncClient, accounts_app_id: str) -> None:
        self._http = sidecar_http
        self._base = f"/v1.0/invoke/{accounts_app_id}/method/internal"

    async def describe(self, account_id: str) -> AccountInfo | None:
        response = await self._http.get(f"{self._base}/accounts/{account_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data = response.json()
        return AccountInfo(
            str(data["id"]), str(data["owner_id"]), str(data["currency"]), str(data["kind"])
        )

    async def post(
        self, side: str, transaction: Transaction, step: str, account_id: str
    ) -> PostingOutcome:
        response = await self._http.post(
            f"{self._base}/{side}",
            json={
                "transaction_id": transaction.id,
                "step": step,
                "account_id": account_id,
                "amount": transaction.amount,
                "currency": transaction.currency,
            },
        )
        if response.status_code in _FINAL_REJECTIONS:
            code = "rejected"
            with contextlib.suppress(ValueError, KeyError):
                code = str(response.json()["code"])
            return PostingOutcome(accepted=False, code=code)
        # Accepted only on the ledger's explicit confirmation. Anything else (a 5xx, or a
        # 2xx without the ledger's answer, as a sidecar can give when the app died mid-call)
        # is transient: the step is retried, and applied at most once either way.
        confirmed = False
        if response.status_code == 200:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                confirmed = isinstance(response.json()["balance_after"], int)
        if not confirmed:
            raise LedgerUnconfirmed(
                f"{side} of {transaction.id}: HTTP {response.status_code} {response.text[:200]}"
            )
        return PostingOutcome(accepted=True)
