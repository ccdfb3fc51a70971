"""Analytics use cases against a fake of our own AggregateStore port."""

from __future__ import annotations

from dataclasses import dataclass, field

from kaya787_analytics.domain import DEDUPE_WINDOW, Aggregates, Overview
from kaya787_analytics.service import AnalyticsService
from kaya787_kit.pubsub import CloudEvent, Delivery
from kaya787_kit.state import EtagConflict


@dataclass
class FakeAggregateStore:
    aggregates: Aggregates = field(default_factory=Aggregates)
    version: int = 0
    conflicts_to_inject: int = 0

    def _etag(self) -> str | None:
        return str(self.version) if self.version else None

    async def load(self) -> tuple[Aggregates, str | None]:
        return self.aggregates, self._etag()

    async def save(self, aggregates: Aggregates, etag: str | None) -> None:
        if self.conflicts_to_inject:
            self.conflicts_to_inject -= 1
            raise EtagConflict("aggregates")
        if etag != self._etag():
            raise EtagConflict("aggregates")
        self.aggregates, self.version = aggregates, self.version + 1


def _event(event_id: str, data: object = None) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        data=data if data is not None else {"user_id": "u-1"},
        time="2026-12-01T10:00:00Z",
    )


async def test_each_event_counts_once_even_when_redelivered() -> None:
    store = FakeAggregateStore()
    service = AnalyticsService(store)
    assert await service.on_user_registered(_event("e-1")) is Delivery.SUCCESS
    assert await service.on_user_registered(_event("e-1")) is Delivery.SUCCESS
    assert await service.on_user_registered(_event("e-2")) is Delivery.SUCCESS
    assert (await service.overview()).users_registered == 2


async def test_malformed_payload_is_dropped_not_counted() -> None:
    store = FakeAggregateStore()
    outcome = await AnalyticsService(store).on_user_registered(_event("e-1", {"nope": 1}))
    assert outcome is Delivery.DROP
    assert store.aggregates.overview.users_registered == 0


async def test_lost_races_are_retried_then_counted() -> None:
    store = FakeAggregateStore(conflicts_to_inject=3)
    assert await AnalyticsService(store).on_user_registered(_event("e-1")) is Delivery.SUCCESS
    assert store.aggregates.overview.users_registered == 1


async def test_endless_conflicts_ask_the_broker_to_retry() -> None:
    store = FakeAggregateStore(conflicts_to_inject=100)
    assert await AnalyticsService(store).on_user_registered(_event("e-1")) is Delivery.RETRY
    assert store.aggregates.overview.users_registered == 0


def test_overview_round_trips_through_json() -> None:
    original = Overview(
        transfers_completed=3,
        volume={"USD": 1250},
        users_registered=2,
        as_of="2026-12-01T10:00:00Z",
    )
    assert Overview.from_json(original.to_json()) == original


def test_dedupe_window_is_bounded() -> None:
    aggregates = Aggregates()
    for i in range(DEDUPE_WINDOW + 10):
        aggregates = aggregates.with_event(f"e-{i}", aggregates.overview)
    assert len(aggregates.recent_event_ids) == DEDUPE_WINDOW
    assert not aggregates.includes("e-0")
    assert aggregates.includes(f"e-{DEDUPE_WINDOW + 9}")
    assert Aggregates.from_json(aggregates.to_json()) == aggregates
