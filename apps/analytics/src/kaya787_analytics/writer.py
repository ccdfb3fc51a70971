"""Group commit: concurrent events share one read-modify-write of the aggregates document.

Each write is one state transaction: the totals and the minutes the batch's events fall in
(each at its ETag) and one insert-only "counted" key per event, so an event is counted
exactly once or not at all.

The broker delivers many events at once and every one of them changes the same key. One
ETag'd write per event would make them race (and lose) against each other; instead, the
first caller to get the lock writes everything queued so far, and the others find their
event already written when their turn comes. Across replicas the ETag still decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from kaya787_kit.cloudevents import Delivery
from kaya787_kit.concurrency import EtagConflict, retry_on_conflict

from kaya787_analytics.domain import Aggregates
from kaya787_analytics.ports import AggregateStore

Change = Callable[[Aggregates], Aggregates]

_log = logging.getLogger("kaya787.analytics")

# One batch stays well inside one sidecar call; the rest waits for the next write.
MAX_BATCH = 200
CONFLICT_ATTEMPTS = 16


@dataclass
class _Job:
    dedupe_id: str
    change: Change
    minute: str | None  # the minute bucket `change` adds to, if any
    outcome: asyncio.Future[Delivery] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    def __init__(self, store: AggregateStore, on_saved: Callable[[Aggregates], None]) -> None:
        self._store = store
        self._on_saved = on_saved
        self._pending: list[_Job] = []
        self._lock = asyncio.Lock()

    async def submit(self, dedupe_id: str, change: Change, minute: str | None = None) -> Delivery:
        """Apply `change` once per `dedupe_id`; SUCCESS also when it was applied before.
        `minute`: the minute bucket the change adds to (loaded and written with the totals).

        RETRY when the key stayed contended; a store failure is raised (the kit answers
        RETRY for it), so the broker redelivers and nothing is lost or counted twice.
        """
        job = _Job(dedupe_id, change, minute)
        self._pending.append(job)
        while not job.outcome.done():
            async with self._lock:
                if job.outcome.done():
                    break
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._commit(batch)
        return job.outcome.result()

    async def _commit(self, batch: list[_Job]) -> None:
        minutes = sorted({job.minute for job in batch if job.minute is not None})

        async def attempt() -> Aggregates:
            loaded = await self._store.load(minutes)
            aggregates = loaded.aggregates
            seen = await self._store.counted([job.dedupe_id for job in batch])
            new: list[str] = []
            for job in batch:
                # Also catches the same event twice in one batch: the first one counts.
                if job.dedupe_id not in seen:
                    aggregates = job.change(aggregates).tick()
                    seen.add(job.dedupe_id)
                    new.append(job.dedupe_id)
            if new:
                await self._store.save(aggregates, loaded, minutes, new)
            return aggregates

        try:
            saved = await retry_on_conflict(attempt, attempts=CONFLICT_ATTEMPTS)
        except EtagConflict:
            _log.warning("aggregates stayed contended", extra={"events": len(batch)})
            self._settle(batch, Delivery.RETRY)
        except Exception as exc:
            # Each caller raises it, so the kit answers RETRY and the broker redelivers.
            for job in batch:
                if not job.outcome.done():
                    job.outcome.set_exception(exc)
        else:
            self._on_saved(saved)
            self._settle(batch, Delivery.SUCCESS)
        finally:
            # A cancelled writer must not leave the others waiting on a batch it took.
            self._settle(batch, Delivery.RETRY)

    @staticmethod
    def _settle(batch: list[_Job], outcome: Delivery) -> None:
        for job in batch:
            if not job.outcome.done():
                job.outcome.set_result(outcome)
