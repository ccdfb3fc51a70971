"""Analytics use cases: count each event exactly once, whatever the broker redelivers."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kaya787_kit.pubsub import CloudEvent, Delivery
from kaya787_kit.state import EtagConflict, retry_on_conflict
from pydantic import ValidationError

from kaya787_analytics.domain import Overview, count_user_registered
from kaya787_analytics.events import UserRegisteredV1
from kaya787_analytics.ports import AggregateStore

_log = logging.getLogger("kaya787.analytics")


class AnalyticsService:
    def __init__(self, store: AggregateStore) -> None:
        self._store = store

    async def overview(self) -> Overview:
        aggregates, _ = await self._store.load()
        return aggregates.overview

    async def on_user_registered(self, event: CloudEvent) -> Delivery:
        try:
            UserRegisteredV1.model_validate(event.data)
        except ValidationError:
            _log.warning("malformed user-registered event", extra={"event_id": event.id})
            return Delivery.DROP
        occurred_at = event.time or datetime.now(UTC).isoformat()

        async def attempt() -> Delivery:
            aggregates, etag = await self._store.load()
            if aggregates.includes(event.id):
                return Delivery.SUCCESS  # a redelivery: already counted
            counted = count_user_registered(aggregates.overview, occurred_at)
            await self._store.save(aggregates.with_event(event.id, counted), etag)
            return Delivery.SUCCESS

        try:
            return await retry_on_conflict(attempt)
        except EtagConflict:
            return Delivery.RETRY
