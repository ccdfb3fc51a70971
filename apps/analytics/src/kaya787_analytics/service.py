"""Analytics use cases: count each event exactly once, whatever the broker redelivers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from kaya787_contracts.accounts import AccountOpenedV1, PostingV1
from kaya787_contracts.identity import UserRegisteredV1
from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.timestamps import parse_time
from pydantic import BaseModel, ValidationError

from kaya787_analytics.domain import (
    Aggregates,
    Delta,
    account_opened_delta,
    minute_key,
    minute_of,
    posting_delta,
    user_registered_delta,
)
from kaya787_analytics.live import VIEW_MINUTES, LiveView
from kaya787_analytics.ports import AggregateStore
from kaya787_analytics.timeseries import (
    minutes_ending_at,
    parse_window,
    reader_for,
    recent_minutes,
    series,
)
from kaya787_analytics.writer import GroupCommit

_log = logging.getLogger("kaya787.analytics")

M = TypeVar("M", bound=BaseModel)

# The dashboard's charts show this many minutes.
DASHBOARD_MINUTES = VIEW_MINUTES


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AnalyticsService:
    def __init__(
        self,
        store: AggregateStore,
        view: LiveView | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self.view = view or LiveView()
        self._clock = clock
        self._writer = GroupCommit(store, on_saved=self.view.merge)

    async def refresh(self) -> Aggregates:
        """The stored totals and the dashboard's minutes, published to the live view
        (another replica may write)."""
        minutes = minutes_ending_at(self._clock(), DASHBOARD_MINUTES)
        aggregates = (await self._store.load(minutes)).aggregates
        self.view.publish(aggregates)
        return aggregates

    async def overview(self) -> dict[str, Any]:
        totals = (await self._store.load()).aggregates
        self.view.merge(totals)
        return totals.public_overview()

    async def timeseries(self, metric: str | None, window: str | None) -> dict[str, Any]:
        """Raises timeseries.QueryError (before any I/O) for an unknown metric or window."""
        minutes = parse_window(window)
        reader_for(metric)
        assert metric is not None  # reader_for refuses None
        now = self._clock()
        loaded = await self._store.load(minutes_ending_at(now, minutes))
        return series(loaded.aggregates, metric, minutes, now).to_json()

    def live_snapshot(self, aggregates: Aggregates) -> dict[str, Any]:
        """What the dashboard stream pushes: the overview and its recent minutes."""
        now = self._clock()
        return {
            "overview": aggregates.public_overview(),
            "minutes": recent_minutes(aggregates, now, DASHBOARD_MINUTES),
            "server_time": minute_key(now),
        }

    async def on_user_registered(self, event: CloudEvent) -> Delivery:
        payload = _parse(UserRegisteredV1, event)
        if payload is None:
            return Delivery.DROP
        delta = user_registered_delta(self._occurred(payload.registered_at, event))
        return await self._count_once(_stable_id(event), delta)

    async def on_account_opened(self, event: CloudEvent) -> Delivery:
        payload = _parse(AccountOpenedV1, event)
        if payload is None:
            return Delivery.DROP
        delta = account_opened_delta(self._occurred(payload.opened_at, event))
        return await self._count_once(payload.event_id, delta)

    async def on_posting(self, event: CloudEvent) -> Delivery:
        posting = _parse(PostingV1, event)
        if posting is None:
            return Delivery.DROP
        delta = posting_delta(
            posting.kind,
            posting.step,
            posting.status == "committed",
            posting.amount,
            posting.currency,
            self._occurred(posting.posted_at, event),
            started_at=posting.created_at,
        )
        if delta is None:
            return Delivery.SUCCESS
        # The posting id: the same whatever the CloudEvent id of a redelivery.
        return await self._count_once(posting.event_id, delta)

    async def on_dead_letter(self, topic: str, event: CloudEvent) -> Delivery:
        """A message Dapr moved to `topic`'s dead-letter topic: counted, once, after all.

        It is replayed through the topic's own use case first (an event that failed while
        a store was away counts like any other, exactly once: same dedupe id); only what
        can never parse is counted as a dead letter. Never DROP here: the dead-letter topic
        has no dead-letter topic of its own.
        """
        replay = {
            UserRegisteredV1.TOPIC: self.on_user_registered,
            AccountOpenedV1.TOPIC: self.on_account_opened,
            PostingV1.TOPIC: self.on_posting,
        }.get(topic)
        outcome = await replay(event) if replay is not None else Delivery.DROP
        if outcome != Delivery.DROP:
            return outcome
        _log.warning("dead letter", extra={"topic": topic, "event_id": event.id})
        return await self._writer.submit(
            f"dlq:{topic}:{event.id}", lambda a: a.count_dead_letter(topic)
        )

    async def _count_once(self, dedupe_id: str, delta: Delta) -> Delivery:
        now = self._clock()
        return await self._writer.submit(
            dedupe_id, lambda a: a.count(delta, now), minute_of(delta, now)
        )

    def _occurred(self, stamp: datetime | None, event: CloudEvent) -> datetime:
        return stamp or parse_time(event.time) or self._clock()


def _parse(model: type[M], event: CloudEvent) -> M | None:
    try:
        return model.model_validate(event.data)
    except ValidationError:
        # DROP sends it to the dead-letter topic at once (Dapr 1.18); RETRY would only
        # spend the resiliency retries on an event that can never parse.
        _log.warning("malformed event", extra={"event_id": event.id, "model": model.__name__})
        return None


def _stable_id(event: CloudEvent) -> str:
    """The payload's own event_id when it has one, else the CloudEvent id."""
    data = event.data
    if isinstance(data, dict):
        own = data.get("event_id")
        if isinstance(own, str) and 0 < len(own) <= 200:
            return own
    return event.id
