"""Analytics use cases: count each event exactly once, whatever the broker redelivers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from kaya787_kit.pubsub import CloudEvent, Delivery
from kaya787_kit.state import EtagConflict, retry_on_conflict
from pydantic import ValidationError

from kaya787_analytics.domain import Overview, count_transaction, count_user_registered
from kaya787_analytics.events import TransactionOutcomeV1, UserRegisteredV1
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
        return await self._count_once(event.id, lambda o: count_user_registered(o, occurred_at))

    async def on_transaction_event(self, event: CloudEvent) -> Delivery:
        try:
            outcome = TransactionOutcomeV1.model_validate(event.data)
        except ValidationError:
            _log.warning("malformed transaction event", extra={"event_id": event.id})
            return Delivery.DROP
        occurred_at = outcome.finished_at or event.time or datetime.now(UTC).isoformat()
        # The outbox gives each redelivery a new CloudEvent id; the event's own id is stable.
        return await self._count_once(
            outcome.event_id,
            lambda o: count_transaction(
                o, outcome.event_type, outcome.amount, outcome.currency, occurred_at
            ),
        )

    async def _count_once(self, dedupe_id: str, change: Callable[[Overview], Overview]) -> Delivery:
        async def attempt() -> Delivery:
            aggregates, etag = await self._store.load()
            if aggregates.includes(dedupe_id):
                return Delivery.SUCCESS  # a redelivery: already counted
            await self._store.save(
                aggregates.with_event(dedupe_id, change(aggregates.overview)), etag
            )
            return Delivery.SUCCESS

        try:
            return await retry_on_conflict(attempt, attempts=16)
        except EtagConflict:
            return Delivery.RETRY
