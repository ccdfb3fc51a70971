"""Analytics use cases against a fake of our own AggregateStore port."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from kaya787_analytics.domain import RETENTION_MINUTES, Overview
from kaya787_analytics.service import AnalyticsService
from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.state import StateStoreError

from tests.fakes.analytics import NOW, FakeAggregateStore, cloud_event, transaction


def _service(store: FakeAggregateStore) -> AnalyticsService:
    return AnalyticsService(store, clock=lambda: NOW)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _user(event_id: str) -> CloudEvent:
    return cloud_event(event_id, {"user_id": f"u-{event_id}"})


async def test_each_event_counts_once_even_when_redelivered() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    assert await service.on_user_registered(_user("e-1")) is Delivery.SUCCESS
    assert await service.on_user_registered(_user("e-1")) is Delivery.SUCCESS
    assert await service.on_user_registered(_user("e-2")) is Delivery.SUCCESS
    assert (await service.overview())["users_registered"] == 2


async def test_a_duplicate_leaves_every_aggregate_unchanged() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    event = cloud_event("ce-1", transaction("t-1:completed"))
    await service.on_posting(event)
    before = store.aggregates
    # The outbox redelivers with a fresh CloudEvent id: the payload's event_id decides.
    assert (
        await service.on_posting(cloud_event("ce-2", transaction("t-1:completed")))
        is Delivery.SUCCESS
    )
    assert store.aggregates == before
    assert store.saves == 1


async def test_malformed_payload_is_dropped_not_counted() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    assert await service.on_user_registered(cloud_event("e-1", {"nope": 1})) is Delivery.DROP
    bad_amount = transaction("t-1:completed", amount=-5)
    assert await service.on_posting(cloud_event("e-2", bad_amount)) is Delivery.DROP
    bad_time = {**transaction("t-2:completed"), "posted_at": "yesterday"}
    assert await service.on_posting(cloud_event("e-3", bad_time)) is Delivery.DROP
    bad_account = {"event_id": "a:opened", "account_id": "a", "currency": "usd"}
    assert await service.on_account_opened(cloud_event("e-4", bad_account)) is Delivery.DROP
    assert store.saves == 0


async def test_transactions_count_per_minute_with_volume_and_latency() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    await service.on_posting(cloud_event("c1", transaction("t-1:completed")))
    await service.on_posting(cloud_event("c2", transaction("t-2:failed", "transfer-failed")))
    deposit = transaction("d-1:completed", "deposit-completed", amount=250)
    await service.on_posting(cloud_event("c3", deposit))
    overview = await service.overview()
    assert overview["transfers_completed"] == 1
    assert overview["transfers_failed"] == 1
    assert overview["deposits_completed"] == 1
    assert overview["volume"] == {"USD": 1250}  # the failed transfer moved nothing
    assert overview["transfer_latency_ms"] == {"p50": 500.0, "p95": 500.0, "p99": 500.0}
    bucket = store.aggregates.minutes["2026-12-01T10:30:00Z"]
    assert (bucket.transfers_completed, bucket.transfers_failed) == (1, 1)


async def test_accounts_opened_dedupe_on_their_event_id() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    opened = {"event_id": "a-1:opened", "account_id": "a-1", "currency": "EUR"}
    assert await service.on_account_opened(cloud_event("x", opened)) is Delivery.SUCCESS
    assert await service.on_account_opened(cloud_event("y", opened)) is Delivery.SUCCESS
    assert (await service.overview())["accounts_opened"] == 1


async def test_dead_letters_count_per_topic_once_per_message() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    topic = "accounts.postings.v1"
    poison = cloud_event("p-1", {"garbage": True})
    assert await service.on_dead_letter(topic, poison) is Delivery.SUCCESS
    assert await service.on_dead_letter(topic, poison) is Delivery.SUCCESS
    await service.on_dead_letter("identity.user-registered.v1", cloud_event("p-2", None))
    assert (await service.overview())["dead_letters"] == {
        topic: 1,
        "identity.user-registered.v1": 1,
    }


async def test_lost_races_are_retried_then_counted() -> None:
    store = FakeAggregateStore(conflicts_to_inject=3)
    assert await _service(store).on_user_registered(_user("e-1")) is Delivery.SUCCESS
    assert store.aggregates.overview.users_registered == 1


async def test_endless_conflicts_ask_the_broker_to_retry() -> None:
    store = FakeAggregateStore(conflicts_to_inject=100)
    assert await _service(store).on_user_registered(_user("e-1")) is Delivery.RETRY
    assert store.aggregates.overview.users_registered == 0


async def test_a_store_failure_is_raised_so_the_kit_answers_retry() -> None:
    store = FakeAggregateStore(fail_with=StateStoreError("sidecar down"))
    with pytest.raises(StateStoreError):
        await _service(store).on_user_registered(_user("e-1"))


async def test_concurrent_events_share_writes_and_none_is_lost() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    events = [_user(f"e-{i}") for i in range(50)] + [_user("e-7")]
    outcomes = await asyncio.gather(*(service.on_user_registered(e) for e in events))
    assert set(outcomes) == {Delivery.SUCCESS}
    assert store.aggregates.overview.users_registered == 50
    assert store.saves < 50  # group commit: one write carried several events


async def test_saving_publishes_to_the_live_view() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    seen = service.view.version
    await service.on_user_registered(_user("e-1"))
    assert service.view.version == seen + 1
    assert service.view.aggregates.overview.users_registered == 1


def test_overview_round_trips_through_json() -> None:
    original = Overview(
        transfers_completed=3,
        volume={"USD": 1250},
        users_registered=2,
        as_of="2026-12-01T10:00:00Z",
        accounts_opened=4,
        dead_letters={"accounts.postings.v1": 1},
    )
    assert Overview.from_json(original.to_json()) == original


async def test_a_redelivery_after_5000_later_events_still_counts_once() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    first = cloud_event("ce-first", transaction("t-first:transfer"))
    assert await service.on_posting(first) is Delivery.SUCCESS
    for i in range(5000):
        await service.on_user_registered(_user(f"later-{i}"))
    # The broker delivers the first event again, long after (under another CloudEvent id).
    again = cloud_event("ce-again", transaction("t-first:transfer"))
    assert await service.on_posting(again) is Delivery.SUCCESS
    overview = await service.overview()
    assert (overview["transfers_completed"], overview["users_registered"]) == (1, 5000)


async def test_a_dead_lettered_event_is_counted_when_replayed_and_only_once() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    topic = "accounts.postings.v1"
    # Delivered once (and counted), then dead-lettered too after a lost answer.
    assert await service.on_posting(cloud_event("c1", transaction("t-1:transfer")))
    assert await service.on_dead_letter(topic, cloud_event("c1", transaction("t-1:transfer")))
    # Never delivered (the store was away): dead-lettered, then counted from there.
    late = cloud_event("c2", transaction("t-2:transfer", amount=5))
    assert await service.on_dead_letter(topic, late) is Delivery.SUCCESS
    assert await service.on_dead_letter(topic, late) is Delivery.SUCCESS
    overview = await service.overview()
    assert overview["transfers_completed"] == 2
    assert overview["volume"] == {"USD": 1005}
    assert overview["dead_letters"] == {}


async def test_counting_reads_and_writes_one_minute_however_many_are_kept() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    # A day of minutes already counted, one event each (the retention window is full).
    for i in range(RETENTION_MINUTES):
        moment = NOW - timedelta(minutes=i)
        await service.on_user_registered(cloud_event(f"old-{i}", {"user_id": "u"}, iso(moment)))
    assert len(store.minutes) == RETENTION_MINUTES
    store.minutes_loaded.clear()
    saves = store.saves
    await service.on_posting(cloud_event("p-1", transaction("p-1")))
    assert store.minutes_loaded == [1]  # the posting's own minute, not the day
    assert store.saves == saves + 1
    bucket, version = store.minutes["2026-12-01T10:30:00Z"]
    assert (bucket.users_registered, bucket.transfers_completed, version) == (1, 1, 2)
    assert store.aggregates.overview.transfers_completed == 1


async def test_the_live_view_keeps_the_recent_minutes_a_save_did_not_touch() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    await service.on_user_registered(cloud_event("a", {"user_id": "u"}, "2026-12-01T10:29:10Z"))
    await service.on_user_registered(cloud_event("b", {"user_id": "u"}, "2026-12-01T10:30:05Z"))
    assert sorted(service.view.aggregates.minutes) == [
        "2026-12-01T10:29:00Z",
        "2026-12-01T10:30:00Z",
    ]
    snapshot = service.live_snapshot(service.view.aggregates)
    counts = {m["minute"]: m["users_registered"] for m in snapshot["minutes"]}
    assert counts["2026-12-01T10:29:00Z"] == counts["2026-12-01T10:30:00Z"] == 1


async def test_a_timeseries_reads_its_window_of_minutes_and_the_overview_none() -> None:
    store = FakeAggregateStore()
    service = _service(store)
    await service.on_posting(cloud_event("p-1", transaction("p-1")))
    store.minutes_loaded.clear()
    await service.overview()
    series = await service.timeseries("transfers_completed", "15")
    assert store.minutes_loaded == [0, 15]
    assert series["series"][-1] == {"minute": "2026-12-01T10:30:00Z", "value": 1}
