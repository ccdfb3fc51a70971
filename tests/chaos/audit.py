"""After a fault: what the ledger and analytics hold, against what the clients were told.

Lost: an accepted transfer that never became final, or completed with fewer than its two
entries. Doubled: one Idempotency-Key answered with two transactions, a transfer with more
than two entries, or entries of a transaction no client was ever given. Events: analytics
must count every final transfer of the phase exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.bench.payers import Payer
from tests.chaos.careful_client import Submission

FINAL_WITHIN = 120.0
EVENTS_WITHIN = 120.0
# After analytics has reached the expected count, how long to watch for a late duplicate.
EVENTS_HOLD = 3.0


@dataclass
class LedgerAudit:
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # invariants that do not hold


async def _get(client: httpx.AsyncClient, path: str, bearer: str) -> Any:
    """GET through the gateway, retried while the platform is still settling."""
    for _ in range(60):
        try:
            response = await client.get(path, headers={"authorization": bearer})
        except httpx.HTTPError:
            await asyncio.sleep(0.5)
            continue
        if response.status_code == 200:
            return response.json()
        if response.status_code < 500 and response.status_code != 429:
            raise AssertionError(f"GET {path}: {response.status_code} {response.text[:200]}")
        await asyncio.sleep(0.5)
    raise AssertionError(f"GET {path} never answered 200")


async def settle(client: httpx.AsyncClient, submissions: list[Submission]) -> None:
    """Follow every accepted but pending transfer until it is final (or FINAL_WITHIN)."""

    async def follow(submission: Submission) -> None:
        assert submission.accepted is not None
        deadline = time.monotonic() + FINAL_WITHIN
        while submission.accepted["status"] == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            path = f"/api/v1/transfers/{submission.transaction_id}"
            submission.accepted = await _get(client, path, submission.payer.bearer)

    pending = [s for s in submissions if s.accepted and s.accepted["status"] == "pending"]
    await asyncio.gather(*(follow(s) for s in pending))


@dataclass
class LedgerView:
    """The payers' accounts as the ledger answers them."""

    entries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    balances: dict[str, int] = field(default_factory=dict)
    entry_sums: dict[str, int] = field(default_factory=dict)  # per account


async def _read_account(
    client: httpx.AsyncClient, payer: Payer, account: str
) -> tuple[list[dict[str, Any]], int]:
    entries: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = f"?limit=200{'&cursor=' + cursor if cursor else ''}"
        page = await _get(client, f"/api/v1/accounts/{account}/entries{query}", payer.bearer)
        entries += page["items"]
        cursor = page["next_cursor"] or ""
        if not cursor:
            break
    body = await _get(client, f"/api/v1/accounts/{account}", payer.bearer)
    return entries, int(body["balance"])


async def read_ledger(client: httpx.AsyncClient, payers: list[Payer]) -> LedgerView:
    """Every entry of the payers' accounts grouped by transaction, and each balance. An
    account whose balance and entries disagree is read again a few times first: a posting
    still in flight may land between the two reads."""
    view = LedgerView()
    for payer in payers:
        for account in payer.accounts:
            for _ in range(5):
                entries, balance = await _read_account(client, payer, account)
                if balance == sum(e["amount"] for e in entries):
                    break
                await asyncio.sleep(1.0)
            for entry in entries:
                view.entries[entry["transaction_id"]].append(entry["amount"])
            view.entry_sums[account] = sum(e["amount"] for e in entries)
            view.balances[account] = balance
    return view


def judge_ledger(
    submissions: list[Submission], view: LedgerView, known: set[str], funded: int
) -> LedgerAudit:
    """Pure: the verdict on one phase. `known` holds every transaction id a client was given
    before this phase (and the funding deposits); this phase's accepted ids join it."""
    audit = LedgerAudit()
    for submission in submissions:
        if len(submission.ids) > 1:
            audit.doubled.append(f"key {submission.key} answered {sorted(submission.ids)}")
        if submission.refused is not None:
            audit.broken.append(f"a valid transfer was refused: {submission.refused}")
        final = submission.accepted
        if final is None:
            continue
        amounts = view.entries.get(str(final["id"]), [])
        if final["status"] == "pending":
            audit.lost.append(f"{final['id']} never became final")
        elif final["status"] == "completed" and len(amounts) < 2:
            audit.lost.append(f"{final['id']} completed with entries {amounts}")
        elif len(amounts) > 2:
            audit.doubled.append(f"{final['id']} has entries {amounts}")
        elif final["status"] == "failed" and amounts:
            audit.broken.append(f"failed {final['id']} posted {amounts}")
        elif sum(amounts) != 0:
            audit.broken.append(f"{final['id']} does not balance: {amounts}")
        known.add(str(final["id"]))
    for transaction_id, amounts in view.entries.items():
        if transaction_id not in known:
            audit.doubled.append(f"{transaction_id} posted {amounts} but no client was told")
    for account, balance in view.balances.items():
        if balance != view.entry_sums[account]:
            audit.broken.append(f"{account}: balance {balance}, entries {view.entry_sums[account]}")
    if sum(view.balances.values()) != funded:
        audit.broken.append(f"balances sum to {sum(view.balances.values())}, not {funded}")
    if view.balances and min(view.balances.values()) < 0:
        audit.broken.append("a balance is negative")
    return audit


@dataclass(frozen=True)
class Counts:
    completed: int
    failed: int


async def analytics_counts(
    client: httpx.AsyncClient, analyst: Callable[[], dict[str, str]]
) -> Counts:
    body = await _get(client, "/api/v1/analytics/overview", analyst()["authorization"])
    return Counts(body["transfers_completed"], body["transfers_failed"])


async def judge_events(
    client: httpx.AsyncClient,
    analyst: Callable[[], dict[str, str]],
    before: Counts,
    submissions: list[Submission],
) -> tuple[int, int, Counts]:
    """(events lost, events doubled, counts now): analytics must count each final transfer
    of the phase once. Waits until it has (or EVENTS_WITHIN), then watches for late extras."""
    finals = [s.accepted["status"] for s in submissions if s.accepted is not None]
    expected = Counts(
        before.completed + finals.count("completed"), before.failed + finals.count("failed")
    )
    deadline = time.monotonic() + EVENTS_WITHIN
    now = await analytics_counts(client, analyst)
    while now != expected and time.monotonic() < deadline:
        if now.completed > expected.completed or now.failed > expected.failed:
            break
        await asyncio.sleep(1.0)
        now = await analytics_counts(client, analyst)
    await asyncio.sleep(EVENTS_HOLD)
    now = await analytics_counts(client, analyst)
    missing = max(0, expected.completed - now.completed) + max(0, expected.failed - now.failed)
    extra = max(0, now.completed - expected.completed) + max(0, now.failed - expected.failed)
    return missing, extra, now
