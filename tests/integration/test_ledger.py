"""The ledger on the real platform: workflows, idempotency, double entry, no money lost."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest

from tests.support.ledger import Customer, Ledger, customer, key, transfer_body
from tests.support.platform import Platform, eventually

pytestmark = pytest.mark.integration


async def test_deposit_transfer_withdrawal_complete_with_balanced_entries(
    platform: Platform,
) -> None:
    alice, bob = customer(platform), customer(platform)
    async with Ledger(platform) as ledger:
        deposit = await ledger.post(
            "/api/v1/deposits",
            {"account_id": alice.accounts[0], "amount": 10_000, "currency": "USD"},
            alice,
            key(),
        )
        assert deposit.status_code == 202, deposit.text
        assert deposit.json()["status"] == "pending"
        assert (await ledger.wait_final(deposit.json()["id"], alice))["status"] == "completed"
        transfer = await ledger.post(
            "/api/v1/transfers",
            transfer_body(alice.accounts[0], bob.accounts[0], 2_500),
            alice,
            key(),
        )
        done = await ledger.wait_final(transfer.json()["id"], alice)
        assert done["status"] == "completed"
        withdrawal = await ledger.post(
            "/api/v1/withdrawals",
            {"account_id": bob.accounts[0], "amount": 500, "currency": "USD"},
            bob,
            key(),
        )
        assert (await ledger.wait_final(withdrawal.json()["id"], bob))["status"] == "completed"
        assert await ledger.balance(alice.accounts[0], alice) == 7_500
        assert await ledger.balance(bob.accounts[0], bob) == 2_000
        a_entries = await ledger.entries(alice.accounts[0], alice)
        b_entries = await ledger.entries(bob.accounts[0], bob)
    by_txn: dict[str, int] = defaultdict(int)
    for entry in a_entries + b_entries:
        by_txn[entry["transaction_id"]] += entry["amount"]
    assert by_txn[transfer.json()["id"]] == 0  # both sides of the transfer
    assert [e["balance_after"] for e in a_entries] == [7_500, 10_000]


async def test_overdraft_fails_with_a_reason_and_moves_nothing(platform: Platform) -> None:
    alice, bob = customer(platform), customer(platform)
    async with Ledger(platform) as ledger:
        response = await ledger.post(
            "/api/v1/transfers",
            transfer_body(alice.accounts[0], bob.accounts[0], 1),
            alice,
        )
        final = await ledger.wait_final(response.json()["id"], alice)
        assert final["status"] == "failed"
        assert final["failure_reason"] == "insufficient_funds"
        assert await ledger.balance(alice.accounts[0], alice) == 0
        assert await ledger.balance(bob.accounts[0], bob) == 0


async def test_idempotency_key_does_the_work_once(platform: Platform) -> None:
    alice = customer(platform)
    body = {"account_id": alice.accounts[0], "amount": 700, "currency": "USD"}
    k = key()
    async with Ledger(platform) as ledger:
        replies = await asyncio.gather(
            *(ledger.post("/api/v1/deposits", body, alice, k) for _ in range(8))
        )
        ids = {r.json()["id"] for r in replies}
        assert len(ids) == 1
        await ledger.wait_final(ids.pop(), alice)
        again = await ledger.post("/api/v1/deposits", body, alice, k)
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json()["status"] == "completed"
        other = await ledger.post("/api/v1/deposits", {**body, "amount": 701}, alice, k)
        assert other.status_code == 422
        assert other.json()["code"] == "idempotency_key_reused"
        assert await ledger.balance(alice.accounts[0], alice) == 700


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 0}, "validation_error"),
        ({"amount": -5}, "validation_error"),
        ({"amount": 10.5}, "validation_error"),
        ({"amount": "100"}, "validation_error"),
        ({"amount": True}, "validation_error"),
        ({"amount": 10**14}, "amount_over_limit"),
        ({"currency": "EUR"}, "currency_mismatch"),
        ({"currency": "usd"}, "validation_error"),
        ({"destination_account_id": "no-such-account"}, "destination_account_not_found"),
        ({"source_account_id": "no-such-account"}, "account_not_found"),
        ({"extra": 1}, "validation_error"),
    ],
)
async def test_bad_transfers_are_clear_4xx(
    platform: Platform, body: dict[str, Any], code: str
) -> None:
    alice, bob = customer(platform), customer(platform)
    request = {**transfer_body(alice.accounts[0], bob.accounts[0], 100), **body}
    async with Ledger(platform) as ledger:
        response = await ledger.post("/api/v1/transfers", request, alice)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_foreign_accounts_and_transfers_are_404(platform: Platform) -> None:
    alice, mallory = customer(platform), customer(platform)
    async with Ledger(platform) as ledger:
        steal = await ledger.post(
            "/api/v1/transfers",
            transfer_body(alice.accounts[0], mallory.accounts[0], 1),
            mallory,
        )
        assert steal.status_code == 404
        peek = await ledger.get(f"/api/v1/accounts/{alice.accounts[0]}", mallory)
        assert peek.status_code == 404
        same = await ledger.post(
            "/api/v1/transfers",
            transfer_body(alice.accounts[0], alice.accounts[0], 1),
            alice,
        )
        assert same.json()["code"] == "same_account"
        mine = await ledger.post(
            "/api/v1/deposits",
            {"account_id": alice.accounts[0], "amount": 5, "currency": "USD"},
            alice,
        )
        assert (
            await ledger.get(f"/api/v1/transfers/{mine.json()['id']}", mallory)
        ).status_code == 404


def test_malformed_json_and_currency_are_refused(platform: Platform) -> None:
    alice = customer(platform)
    raw = platform.public(
        "POST",
        "/api/v1/transfers",
        content=b"{not json",
        headers={**alice.bearer, "content-type": "application/json"},
    )
    assert raw.status_code == 422
    bad_currency = platform.public(
        "POST", "/api/v1/accounts", json={"currency": "XYZ"}, headers=alice.bearer
    )
    assert bad_currency.status_code == 422
    assert bad_currency.json()["code"] == "invalid_currency"


def test_events_reach_analytics_through_the_outbox(platform: Platform) -> None:
    alice, bob = customer(platform), customer(platform)

    def overview() -> dict[str, Any]:
        body: dict[str, Any] = platform.public(
            "GET", "/api/v1/analytics/overview", headers=alice.bearer
        ).json()
        return body

    before = overview()
    deposit = platform.public(
        "POST",
        "/api/v1/deposits",
        headers=alice.bearer,
        json={"account_id": alice.accounts[0], "amount": 1_000, "currency": "USD"},
    ).json()
    eventually(
        lambda: (
            platform.public(
                "GET", f"/api/v1/transfers/{deposit['id']}", headers=alice.bearer
            ).json()["status"]
            == "completed"
        )
    )
    platform.public(
        "POST",
        "/api/v1/transfers",
        headers=alice.bearer,
        json=transfer_body(alice.accounts[0], bob.accounts[0], 400),
    )
    after = eventually(
        lambda: (o := overview())["transfers_completed"] > before["transfers_completed"] and o,
        timeout=30,
        what="analytics to count the transfer",
    )
    assert after["deposits_completed"] > before["deposits_completed"]
    assert after["volume"]["USD"] >= before["volume"].get("USD", 0) + 1_400
    assert after["users_registered"] >= before["users_registered"]


async def _run_random_transfers(
    platform: Platform, ledger: Ledger, customers: list[Customer], count: int, concurrency: int
) -> list[dict[str, Any]]:
    accounts = [(c, a) for c in customers for a in c.accounts]
    rng = random.Random(787)
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> dict[str, Any]:
        (owner, source), (_, destination) = rng.sample(accounts, 2)
        amount = rng.choice([100, 500, 1_000, 5_000, 20_000])  # the big ones overdraw
        body = transfer_body(source, destination, amount)
        k = key()
        async with semaphore:
            started = time.perf_counter()
            reply = await _submit_until_accepted(ledger, body, owner, k)
            # A client retrying the same request gets the same transaction.
            retried = await _submit_until_accepted(ledger, body, owner, k)
            assert retried.json()["id"] == reply.json()["id"]
        final = await ledger.wait_final(reply.json()["id"], owner, within=300)
        final["latency"] = time.perf_counter() - started
        return final

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _submit_until_accepted(
    ledger: Ledger, body: dict[str, Any], owner: Customer, k: str
) -> Any:
    """What a careful client does while a service restarts: retry with the same key."""
    for _ in range(120):
        try:
            reply = await ledger.post("/api/v1/transfers", body, owner, k)
        except httpx.HTTPError:
            reply = None
        if reply is not None and reply.status_code == 202:
            return reply
        if reply is not None and 400 <= reply.status_code < 500 and reply.status_code != 429:
            raise AssertionError(reply.text)
        await asyncio.sleep(0.5)
    raise AssertionError("the transfer was never accepted")


async def _assert_no_money_lost(
    ledger: Ledger, customers: list[Customer], deposited: int, finals: list[dict[str, Any]]
) -> None:
    assert all(f["status"] in ("completed", "failed") for f in finals)
    balances = [await ledger.balance(a, c) for c in customers for a in c.accounts]
    assert min(balances) >= 0
    assert sum(balances) == deposited
    entries: dict[str, list[int]] = defaultdict(list)
    for c in customers:
        for a in c.accounts:
            for entry in await ledger.entries(a, c):
                entries[entry["transaction_id"]].append(entry["amount"])
    for final in finals:
        amounts = entries.get(final["id"], [])
        if final["status"] == "completed":
            assert len(amounts) == 2, (final, amounts)
            assert sum(amounts) == 0
        else:
            assert sum(amounts) == 0  # nothing, or a debit and its compensation


async def _funded_customers(
    platform: Platform, ledger: Ledger, people: int, per: int, amount: int
) -> list[Customer]:
    customers = [customer(platform, ("USD",) * per) for _ in range(people)]
    ids = []
    for c in customers:
        for account in c.accounts:
            reply = await ledger.post(
                "/api/v1/deposits",
                {"account_id": account, "amount": amount, "currency": "USD"},
                c,
                key(),
            )
            ids.append((reply.json()["id"], c))
    for transaction_id, c in ids:
        assert (await ledger.wait_final(transaction_id, c))["status"] == "completed"
    return customers


async def test_300_concurrent_transfers_lose_no_money(platform: Platform) -> None:
    async with Ledger(platform) as ledger:
        customers = await _funded_customers(platform, ledger, people=5, per=4, amount=10_000)
        started = time.perf_counter()
        finals = await _run_random_transfers(platform, ledger, customers, count=300, concurrency=40)
        elapsed = time.perf_counter() - started
        await _assert_no_money_lost(ledger, customers, 20 * 10_000, finals)
    failed = [f for f in finals if f["status"] == "failed"]
    assert failed, "the mix is meant to overdraw some accounts"
    assert {f["failure_reason"] for f in failed} == {"insufficient_funds"}
    latencies = sorted(f["latency"] for f in finals)
    print(
        f"\n300 transfers in {elapsed:.1f}s = {300 / elapsed:.1f}/s; completion p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.0f} ms"
    )


@pytest.mark.parametrize("victim", ["accounts", "transactions"])
async def test_kill_9_mid_flight_every_transfer_still_ends_and_balances(
    platform: Platform, victim: str
) -> None:
    async with Ledger(platform) as ledger:
        customers = await _funded_customers(platform, ledger, people=3, per=2, amount=5_000)
        run = asyncio.create_task(
            _run_random_transfers(platform, ledger, customers, count=60, concurrency=20)
        )
        await asyncio.sleep(1.0)
        await asyncio.to_thread(platform.stack.stop_app, victim, kill=True)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(platform.stack.start_app, victim)
        finals = await asyncio.wait_for(run, timeout=400)
        await _assert_no_money_lost(ledger, customers, 6 * 5_000, finals)
