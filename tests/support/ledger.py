"""Helpers for ledger tests: users with accounts, money moves, waiting for outcomes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.platform import Platform


def transfer_body(source: str, destination: str, amount: int) -> dict[str, Any]:
    """A USD transfer request as the public API takes it."""
    return {
        "source_account_id": source,
        "destination_account_id": destination,
        "amount": amount,
        "currency": "USD",
    }


def final_transaction(
    platform: Platform, transaction_id: str, who: dict[str, str], timeout: float = 60.0
) -> dict[str, Any]:
    """Poll a transaction (synchronously) until it is no longer pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = platform.public("GET", f"/api/v1/transfers/{transaction_id}", headers=who)
        body: dict[str, Any] = response.json()
        if body.get("status") not in (None, "pending"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"{transaction_id} never finished")


def funded_accounts(platform: Platform, who: dict[str, str], amount: int) -> tuple[str, str]:
    """Two new USD accounts of `who` through the gateway, the first funded by a deposit of
    `amount` that has completed."""
    ids = []
    for _ in range(2):
        opened = platform.public("POST", "/api/v1/accounts", json={"currency": "USD"}, headers=who)
        assert opened.status_code == 201, opened.text
        ids.append(str(opened.json()["id"]))
    deposit = platform.public(
        "POST",
        "/api/v1/deposits",
        headers={**who, "Idempotency-Key": uuid.uuid4().hex},
        json={"account_id": ids[0], "amount": amount, "currency": "USD"},
    )
    assert deposit.status_code in (201, 202), deposit.text
    assert final_transaction(platform, deposit.json()["id"], who)["status"] == "completed"
    return ids[0], ids[1]


@dataclass
class Customer:
    bearer: dict[str, str]
    accounts: list[str]


def customer(platform: Platform, currencies: tuple[str, ...] = ("USD",)) -> Customer:
    _, issued = platform.register_and_login()
    bearer = {"authorization": f"Bearer {issued['access_token']}"}
    accounts = []
    for currency in currencies:
        opened = platform.public(
            "POST", "/api/v1/accounts", json={"currency": currency}, headers=bearer
        )
        assert opened.status_code == 201, opened.text
        accounts.append(opened.json()["id"])
    return Customer(bearer, accounts)


class Ledger:
    """Async client on the transactions and accounts public routes, past the edge (the
    gateway's sidecar): load tests exercise the ledger, not the edge's rate limit."""

    def __init__(self, platform: Platform) -> None:
        # Generous: under a 300-transfer burst on 2 cores one call can take seconds.
        self._client = platform.async_sidecar("gateway", timeout=60.0)

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def post(
        self, path: str, body: dict[str, Any], who: Customer, key: str | None = None
    ) -> httpx.Response:
        """`key` None sends a fresh Idempotency-Key (money POSTs need one); "" sends none."""
        headers = dict(who.bearer)
        idempotency_key = fresh_key() if key is None else key
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        app = "accounts" if path.startswith("/api/v1/accounts") else "transactions"
        return await self._client.post(
            f"/v1.0/invoke/{app}/method{path}", json=body, headers=headers
        )

    async def get(self, path: str, who: Customer) -> httpx.Response:
        app = "accounts" if path.startswith("/api/v1/accounts") else "transactions"
        return await self._client.get(f"/v1.0/invoke/{app}/method{path}", headers=who.bearer)

    async def wait_final(
        self, transaction_id: str, who: Customer, within: float = 120.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        delay = 0.1
        while True:
            try:
                response = await self.get(f"/api/v1/transfers/{transaction_id}", who)
            except httpx.HTTPError:
                await asyncio.sleep(delay)  # a service restarting: keep polling
                continue
            if response.status_code == 200 and response.json()["status"] != "pending":
                result: dict[str, Any] = response.json()
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{transaction_id} still pending: {response.text}")
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 1.5)

    async def deposit(self, who: Customer, account_id: str, amount: int) -> dict[str, Any]:
        """A USD deposit, waited for: its final state."""
        response = await self.post(
            "/api/v1/deposits",
            {"account_id": account_id, "amount": amount, "currency": "USD"},
            who,
            key(),
        )
        assert response.status_code in (201, 202), response.text
        return await self.wait_final(response.json()["id"], who)

    async def withdraw(self, who: Customer, account_id: str, amount: int) -> dict[str, Any]:
        """A USD withdrawal (payout), waited for: its final state."""
        response = await self.post(
            "/api/v1/withdrawals",
            {"account_id": account_id, "amount": amount, "currency": "USD"},
            who,
            key(),
        )
        assert response.status_code in (201, 202), response.text
        return await self.wait_final(response.json()["id"], who)

    async def transfer(
        self, who: Customer, source: str, destination: str, amount: int
    ) -> dict[str, Any]:
        """A USD transfer, waited for: its final state."""
        response = await self.post(
            "/api/v1/transfers", transfer_body(source, destination, amount), who, key()
        )
        assert response.status_code in (201, 202), response.text
        return await self.wait_final(response.json()["id"], who)

    async def balance(self, account_id: str, who: Customer) -> int:
        response = await self.get(f"/api/v1/accounts/{account_id}", who)
        assert response.status_code == 200, response.text
        balance: int = response.json()["balance"]
        return balance

    async def entries(self, account_id: str, who: Customer) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = f"?limit=200{'&cursor=' + cursor if cursor else ''}"
            response = await self.get(f"/api/v1/accounts/{account_id}/entries{query}", who)
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items


@dataclass(frozen=True)
class Entry:
    transaction_id: str
    amount: int


async def snapshot(
    ledger: Ledger, customers: Sequence[Customer]
) -> tuple[dict[str, int], dict[str, list[Entry]]]:
    """Every balance and every entry of the customers' accounts, once nothing moves."""
    balances: dict[str, int] = {}
    entries: dict[str, list[Entry]] = {}
    gate = asyncio.Semaphore(8)  # well under the 64 in flight past which accounts sheds

    async def one(who: Customer, account: str) -> None:
        async with gate:
            listed = await ledger.entries(account, who)
            entries[account] = [Entry(e["transaction_id"], e["amount"]) for e in listed]
            balances[account] = await ledger.balance(account, who)

    await asyncio.gather(*(one(c, a) for c in customers for a in c.accounts))
    return balances, entries


def money_problems(
    transfers: Mapping[str, str],
    entries: Mapping[str, Sequence[Entry]],
    before: Mapping[str, int],
    after: Mapping[str, int],
) -> list[str]:
    """What is wrong with the money of accounts that only transferred among themselves for a
    while, [] when nothing: `transfers` is every transfer of that while (id -> its final
    status), `entries` every entry of every account, `before`/`after` the balances.

    The sum of the balances is unchanged and none is negative; a completed transfer posted
    exactly its two legs, summing to zero (a third leg would be a double posting), a failed
    one nothing; every balance is its balance before plus its entries of the while, and the
    entries of anything else add up to the balance before (nothing else posted meanwhile).
    """
    problems = []
    if sum(after.values()) != sum(before.values()):
        problems.append(f"sum of balances {sum(before.values())} -> {sum(after.values())}")
    problems += [f"{a} is negative: {b}" for a, b in sorted(after.items()) if b < 0]
    legs: dict[str, list[int]] = defaultdict(list)
    for account_entries in entries.values():
        for entry in account_entries:
            if entry.transaction_id in transfers:
                legs[entry.transaction_id].append(entry.amount)
    for transfer_id, status in transfers.items():
        amounts = sorted(legs.get(transfer_id, []))
        if status == "completed" and (len(amounts) != 2 or sum(amounts) != 0):
            problems.append(f"completed {transfer_id} posted {amounts}")
        elif status == "failed" and amounts:
            problems.append(f"failed {transfer_id} posted {amounts}")
        elif status not in ("completed", "failed"):
            problems.append(f"{transfer_id} is {status}")
    for account in sorted(set(before) | set(after)):
        listed = entries.get(account, [])
        during = sum(e.amount for e in listed if e.transaction_id in transfers)
        earlier = sum(e.amount for e in listed if e.transaction_id not in transfers)
        if before.get(account, 0) + during != after.get(account, 0):
            problems.append(
                f"{account}: {before.get(account, 0)} + entries {during} != {after.get(account)}"
            )
        if earlier != before.get(account, 0):
            problems.append(f"{account}: other entries sum to {earlier}, was {before.get(account)}")
    return problems


def fresh_key() -> str:
    """A new Idempotency-Key."""
    return f"k-{uuid.uuid4().hex}"


key = fresh_key
