"""Steady, bounded load of transfers through the gateway while something else happens (a
rolling restart): every answer kept, then the books checked - no money lost or doubled.

Open loop (tests/bench/openloop.py): a transfer is sent at each slot whatever the answers,
so a platform that stalls shows as latency or errors, never as a lower offered rate.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from kaya787_launcher.gateway import GATEWAY_PORT

from tests.bench.openloop import Answer, ConnectionPool, Request
from tests.support.ledger import customer, final_transaction
from tests.support.platform import Platform

FUNDS = 1_000_000  # minor units each payer starts with: never short during a run


@dataclass(frozen=True)
class Payer:
    bearer: dict[str, str]
    account: str


@dataclass(frozen=True)
class Outcome:
    answers: list[Answer]

    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)

    def failures(self) -> list[Answer]:
        """Every answer that is not 2xx (0: no answer at all); 429 and 503 included."""
        return [a for a in self.answers if not 200 <= a.status < 300]


def funded_payers(platform: Platform, count: int) -> list[Payer]:
    """`count` users, each with one USD account funded by a completed deposit of FUNDS."""
    payers = []
    for _ in range(count):
        who = customer(platform)
        deposit = platform.public(
            "POST",
            "/api/v1/deposits",
            headers={**who.bearer, "Idempotency-Key": uuid.uuid4().hex},
            json={"account_id": who.accounts[0], "amount": FUNDS, "currency": "USD"},
        )
        assert deposit.status_code in (201, 202), deposit.text
        final = final_transaction(platform, deposit.json()["id"], who.bearer)
        assert final["status"] == "completed", final
        payers.append(Payer(who.bearer, who.accounts[0]))
    return payers


def _transfer(payer: Payer, destination: str) -> Request:
    body = {
        "source_account_id": payer.account,
        "destination_account_id": destination,
        "amount": 1,
        "currency": "USD",
    }
    return Request(
        "POST",
        "/api/v1/transfers",
        {
            **payer.bearer,
            "content-type": "application/json",
            "idempotency-key": uuid.uuid4().hex,
        },
        json.dumps(body).encode(),
    )


async def offer_transfers(
    payers: list[Payer],
    rate: float,
    seconds: float,
    *,
    busy: Callable[[], bool] = lambda: False,
    max_seconds: float = 60.0,
) -> Outcome:
    """Transfers of 1 minor unit between random payers at `rate`/s for `seconds`, and on
    while `busy()` (something still happening) up to `max_seconds`; bounded at 50/s. Each
    transfer is due at its slot, whatever the answers before it (open loop)."""
    rate = min(rate, 50.0)
    max_seconds = min(max(seconds, max_seconds), 120.0)
    rng = random.Random(787)
    loop = asyncio.get_running_loop()
    pool = ConnectionPool(GATEWAY_PORT, limit=64)
    answers: list[Answer] = []

    async def one(i: int, due: float) -> None:
        src, dst = rng.sample(range(len(payers)), 2)
        try:
            status, body = await pool.send(_transfer(payers[src], payers[dst].account), 20.0)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            answers.append(Answer(due, float("inf"), 0, b""))
            return
        answers.append(Answer(due, loop.time() - due, status, body))

    start = loop.time() + 0.05
    tasks = []
    try:
        for i in range(int(rate * max_seconds)):
            due = start + i / rate
            if due - start >= seconds and not busy():
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    finally:
        pool.close()
    return Outcome(answers)


def expected_balances(payers: list[Payer], outcome: Outcome) -> list[int]:
    """Each payer's balance if exactly the transfers answered `completed` moved money.

    Counted from the answers' bodies (each names its source and destination): a transfer
    without a 2xx answer has an unknown outcome, so a run with any is already a failure."""
    by_account = {p.account: i for i, p in enumerate(payers)}
    balances = [FUNDS] * len(payers)
    for answer in outcome.answers:
        if answer.status not in (200, 201):
            continue
        body = json.loads(answer.body)
        if body.get("status") != "completed":
            continue
        balances[by_account[body["source_account_id"]]] -= int(body["amount"])
        balances[by_account[body["destination_account_id"]]] += int(body["amount"])
    return balances


def balances(platform: Platform, payers: list[Payer]) -> list[int]:
    found = []
    for payer in payers:
        response = platform.public("GET", f"/api/v1/accounts/{payer.account}", headers=payer.bearer)
        assert response.status_code == 200, response.text
        found.append(int(response.json()["balance"]))
    return found


def run(
    payers: list[Payer],
    rate: float,
    seconds: float,
    *,
    busy: Callable[[], bool] = lambda: False,
    max_seconds: float = 60.0,
) -> Outcome:
    return asyncio.run(offer_transfers(payers, rate, seconds, busy=busy, max_seconds=max_seconds))
