"""Dapr state implementation of the analytics ports."""

from kaya787_kit.state import DaprStateStore

from kaya787_analytics.domain import Aggregates

AGGREGATES_KEY = "aggregates"


class DaprAggregateStore:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def load(self) -> tuple[Aggregates, str | None]:
        current = await self._state.get(AGGREGATES_KEY)
        if current is None:
            return Aggregates(), None
        return Aggregates.from_json(current.value), current.etag

    async def save(self, aggregates: Aggregates, etag: str | None) -> None:
        await self._state.save(AGGREGATES_KEY, aggregates.to_json(), etag)
