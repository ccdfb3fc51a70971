"""Dapr state implementation of the analytics ports (a store with transaction rollback)."""

from collections.abc import Sequence

from kaya787_kit.state import DaprStateStore, Put, ttl

from kaya787_analytics.domain import Aggregates

AGGREGATES_KEY = "aggregates"
# A counted event's marker outlives any redelivery by far (brokers redeliver within hours,
# a dead letter is replayed within days), then expires so the store stays bounded.
COUNTED_TTL_SECONDS = 30 * 24 * 3600


def counted_key(event_id: str) -> str:
    return f"counted:{event_id}"


class DaprAggregateStore:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def load(self) -> tuple[Aggregates, str | None]:
        current = await self._state.get(AGGREGATES_KEY)
        if current is None:
            return Aggregates(), None
        return Aggregates.from_json(current.value), current.etag

    async def counted(self, event_ids: Sequence[str]) -> set[str]:
        found = await self._state.bulk_get([counted_key(i) for i in event_ids])
        return {i for i in event_ids if counted_key(i) in found}

    async def save(self, aggregates: Aggregates, etag: str | None, counted: Sequence[str]) -> None:
        await self._state.transact(
            [
                Put(AGGREGATES_KEY, aggregates.to_json(), etag),
                *(Put(counted_key(i), 1, None, ttl(COUNTED_TTL_SECONDS)) for i in counted),
            ]
        )
