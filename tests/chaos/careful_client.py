"""A careful client: it offers transfers at a fixed rate through the gateway and, like a
real client of a money API, retries each one with the same Idempotency-Key until it is
accepted (honouring Retry-After, backing off otherwise). What it saw on the way is kept.
It speaks through the benchmarks' light HTTP/1.1 pool: during an outage hundreds of
submissions wait at once, and the client must stay cheap and fair while they do."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.bench.openloop import ConnectionPool, Request
from tests.bench.payers import Payer, transfer_request
from tests.support.ledger import transfer_body

# A transfer not accepted after this long is set aside; once the platform serves again the
# client asks once more with the same key (`confirm`), as a real one would.
GIVE_UP_SECONDS = 60.0
REQUEST_TIMEOUT = 15.0
ACCEPTED = (201, 202)
# Refusals a careful client retries: throttled, busy, and the edge's own "upstream gone".
RETRIABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class Submission:
    payer: Payer
    body: dict[str, Any]
    key: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex}")
    errors: Counter[str] = field(default_factory=Counter)
    ids: set[str] = field(default_factory=set)  # more than one: the key was not honoured
    accepted: dict[str, Any] | None = None
    refused: str | None = None  # a 4xx a valid transfer must never get

    @property
    def transaction_id(self) -> str | None:
        return None if self.accepted is None else str(self.accepted["id"])


def _retry_after(fields: dict[str, str], attempt: int) -> float:
    header = fields.get("retry-after", "")
    if header.isdigit():
        return min(10.0, float(header)) * random.uniform(1.0, 1.5)
    return _backoff(attempt)


def _backoff(attempt: int) -> float:
    # Exponential with jitter, up to 10 s: during an outage hundreds of transfers wait at
    # once, and retrying them all every second or two would be a storm of its own.
    return float(min(10.0, 0.25 * 2**attempt)) * random.uniform(0.5, 1.0)


def _request(submission: Submission) -> Request:
    body = submission.body
    return transfer_request(
        submission.payer,
        body["source_account_id"],
        body["destination_account_id"],
        body["amount"],
        submission.key,
    )


async def submit(
    pool: ConnectionPool, submission: Submission, within: float = GIVE_UP_SECONDS
) -> Submission:
    """Send until accepted, refused for good, or `within` seconds have passed."""
    deadline = time.monotonic() + within
    attempt = 0
    while time.monotonic() < deadline:
        try:
            status, fields, body = await pool.exchange(_request(submission), REQUEST_TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            submission.errors[type(error).__name__] += 1
            await asyncio.sleep(_backoff(attempt))
            attempt += 1
            continue
        if status in ACCEPTED:
            answer: dict[str, Any] = json.loads(body)
            submission.ids.add(str(answer["id"]))
            submission.accepted = answer
            return submission
        submission.errors[str(status)] += 1
        if status not in RETRIABLE:
            submission.refused = f"{status} {body[:200].decode(errors='replace')}"
            return submission
        await asyncio.sleep(_retry_after(fields, attempt))
        attempt += 1
    return submission


class SteadyLoad:
    """Transfers of one cent between random accounts of the payers, offered at `rate` per
    second from `start()` until `stop()`; each one submitted carefully."""

    def __init__(self, pool: ConnectionPool, payers: list[Payer], rate: float) -> None:
        self._pool = pool
        self._accounts = [(p, a) for p in payers for a in p.accounts]
        self._rate = rate
        self._rng = random.Random(787)
        self._stopping = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._inflight: list[asyncio.Task[Submission]] = []

    def _next(self) -> Submission:
        (payer, source), (_, destination) = self._rng.sample(self._accounts, 2)
        return Submission(payer, transfer_body(source, destination, 1))

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        while not self._stopping.is_set():
            due = started + sent / self._rate
            delay = due - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                    return
                except TimeoutError:
                    pass
            self._inflight.append(asyncio.create_task(submit(self._pool, self._next())))
            sent += 1

    def start(self) -> None:
        self._stopping.clear()
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> list[Submission]:
        """Stop offering; every submission once it has ended (accepted, refused, given up)."""
        self._stopping.set()
        if self._ticker is not None:
            await self._ticker
        done = list(await asyncio.gather(*self._inflight))
        self._inflight = []
        return done


async def confirm(pool: ConnectionPool, submissions: list[Submission]) -> int:
    """Ask again, with the same keys, for the transfers set aside during the outage; how
    many are still not accepted. A transfer the platform applied while its answers were
    lost is found by its key here, not posted again."""
    waiting = [s for s in submissions if s.accepted is None and s.refused is None]
    await asyncio.gather(*(submit(pool, s) for s in waiting))
    return sum(s.accepted is None and s.refused is None for s in waiting)
