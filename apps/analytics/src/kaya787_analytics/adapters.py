"""Dapr state implementation of the analytics ports (a store with transaction rollback).

The totals live under one key, each minute's bucket under a key of its own: counting an
event reads and writes the totals and the minute it falls in, never the day of minutes a
single document would carry (parsing and writing that whole document for every event
cost analytics more CPU than the rest of a transfer's path). A document written before
the split still holds its minutes; they load with it and move to their own keys with the
next save.
"""

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from kaya787_kit.state import DaprStateStore, Put, ttl

from kaya787_analytics.domain import RETENTION_MINUTES, Aggregates, MinuteBucket
from kaya787_analytics.ports import Snapshot

AGGREGATES_KEY = "aggregates"
# A counted event's marker outlives any redelivery by far (brokers redeliver within hours,
# a dead letter is replayed within days), then expires so the store stays bounded.
COUNTED_TTL_SECONDS = 30 * 24 * 3600
# A minute is read while it is within the retention window, then expires.
MINUTE_TTL_SECONDS = (RETENTION_MINUTES + 60) * 60
_MINUTE_PREFIX = "minute:"


def counted_key(event_id: str) -> str:
    return f"counted:{event_id}"


def minute_state_key(minute: str) -> str:
    return _MINUTE_PREFIX + minute


class DaprAggregateStore:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def load(self, minutes: Sequence[str] = ()) -> Snapshot:
        keys = [AGGREGATES_KEY, *(minute_state_key(m) for m in minutes)]
        found = await self._state.bulk_get(keys)
        head = found.pop(AGGREGATES_KEY, None)
        aggregates = Aggregates() if head is None else Aggregates.from_json(head.value)
        inside = dict(aggregates.minutes)  # minutes of a document written before the split
        if inside:
            # Their own keys too (an older replica may have written the document after a
            # newer one moved its minutes out): the save must find them at their ETags.
            extra = [minute_state_key(m) for m in inside if minute_state_key(m) not in keys]
            found |= await self._state.bulk_get(extra)
        stored: dict[str, MinuteBucket] = {}
        etags: dict[str, str] = {}
        for key, item in found.items():
            minute = key.removeprefix(_MINUTE_PREFIX)
            stored[minute] = MinuteBucket.from_json(_mapping(item.value))
            etags[minute] = item.etag
        for minute, bucket in inside.items():
            # Counted by the document's writer and not in the key: both together.
            stored[minute] = stored[minute].merge(bucket) if minute in stored else bucket
        return Snapshot(
            replace(aggregates, minutes=stored),
            None if head is None else head.etag,
            etags,
            frozenset(inside),
        )

    async def counted(self, event_ids: Sequence[str]) -> set[str]:
        found = await self._state.bulk_get([counted_key(i) for i in event_ids])
        return {i for i in event_ids if counted_key(i) in found}

    async def save(
        self,
        aggregates: Aggregates,
        loaded: Snapshot,
        minutes: Sequence[str],
        counted: Sequence[str],
    ) -> None:
        # Minutes that came inside an old document move out now (merged into their key).
        written = sorted((set(minutes) | loaded.inside) & set(aggregates.minutes))
        await self._state.transact(
            [
                Put(AGGREGATES_KEY, aggregates.head().to_json(), loaded.etag),
                *(
                    Put(
                        minute_state_key(m),
                        aggregates.minutes[m].to_json(),
                        loaded.minute_etags.get(m),
                        ttl(MINUTE_TTL_SECONDS),
                    )
                    for m in written
                ),
                *(Put(counted_key(i), 1, None, ttl(COUNTED_TTL_SECONDS)) for i in counted),
            ]
        )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
