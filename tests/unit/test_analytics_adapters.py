"""The analytics state adapter's layout (totals under one key, a key per minute) against an
in-memory stand-in for the kit's state client, and its move of a document written before
the minutes had keys of their own."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kaya787_analytics.adapters import AGGREGATES_KEY, DaprAggregateStore, minute_state_key
from kaya787_analytics.domain import Aggregates, user_registered_delta
from kaya787_kit.concurrency import EtagConflict, Versioned
from kaya787_kit.state import DaprStateStore, Put

NOW = datetime(2026, 12, 1, 10, 30, 15, tzinfo=UTC)
EARLIER = datetime(2026, 12, 1, 9, 5, 0, tzinfo=UTC)


class MemoryState:
    """bulk_get and transact as the sidecar answers them: ETags, insert-only on None."""

    def __init__(self) -> None:
        self.items: dict[str, Versioned[Any]] = {}
        self.bulk_keys: list[list[str]] = []
        self.written: list[list[str]] = []

    async def bulk_get(
        self, keys: Sequence[str], *, confirm_missing: Collection[str] = ()
    ) -> dict[str, Versioned[Any]]:
        self.bulk_keys.append(list(keys))
        return {k: self.items[k] for k in keys if k in self.items}

    async def transact(self, operations: Sequence[Put]) -> None:
        for op in operations:
            current = self.items.get(op.key)
            if (current.etag if current else None) != op.etag:
                raise EtagConflict(op.key)
        for op in operations:
            current = self.items.get(op.key)
            version = int(current.etag) + 1 if current else 1
            self.items[op.key] = Versioned(op.value, str(version))
        self.written.append([op.key for op in operations])


def _store(state: MemoryState) -> DaprAggregateStore:
    return DaprAggregateStore(cast(DaprStateStore, state))


async def test_an_event_writes_the_totals_and_its_minute_only() -> None:
    state = MemoryState()
    store = _store(state)
    minute = "2026-12-01T10:30:00Z"
    loaded = await store.load([minute])
    assert (loaded.etag, dict(loaded.minute_etags)) == (None, {})
    counted = loaded.aggregates.count(user_registered_delta(NOW), NOW)
    await store.save(counted, loaded, [minute], ["e-1"])
    assert state.written == [[AGGREGATES_KEY, minute_state_key(minute), "counted:e-1"]]
    assert state.items[AGGREGATES_KEY].value["minutes"] == {}
    again = await store.load([minute])
    assert again.aggregates.minutes[minute].users_registered == 1
    assert again.minute_etags == {minute: "1"}
    assert again.aggregates.overview.users_registered == 1


async def test_a_minute_written_meanwhile_is_a_conflict_and_nothing_is_written() -> None:
    state = MemoryState()
    store = _store(state)
    minute = "2026-12-01T10:30:00Z"
    first = await store.load([minute])
    second = await store.load([minute])
    await store.save(first.aggregates.count(user_registered_delta(NOW), NOW), first, [minute], [])
    with pytest.raises(EtagConflict):
        await store.save(
            second.aggregates.count(user_registered_delta(NOW), NOW), second, [minute], ["e-2"]
        )
    assert "counted:e-2" not in state.items


async def test_a_document_with_its_minutes_inside_moves_them_to_their_keys() -> None:
    state = MemoryState()
    old = Aggregates().count(user_registered_delta(EARLIER), NOW)
    old = old.count(user_registered_delta(NOW), NOW)
    state.items[AGGREGATES_KEY] = Versioned(old.to_json(), "7")  # minutes inside
    store = _store(state)
    minute = "2026-12-01T10:30:00Z"
    loaded = await store.load([minute])
    assert sorted(loaded.aggregates.minutes) == ["2026-12-01T09:05:00Z", minute]
    assert loaded.minute_etags == {}
    counted = loaded.aggregates.count(user_registered_delta(NOW), NOW)
    await store.save(counted, loaded, [minute], ["e-3"])
    assert state.items[AGGREGATES_KEY].value["minutes"] == {}
    assert state.items[minute_state_key("2026-12-01T09:05:00Z")].value["users_registered"] == 1
    assert state.items[minute_state_key(minute)].value["users_registered"] == 2
    both = await store.load(["2026-12-01T09:05:00Z", minute])
    assert both.aggregates.overview.users_registered == 3
    assert set(both.minute_etags) == {"2026-12-01T09:05:00Z", minute}


async def test_minutes_in_the_document_and_in_their_keys_add_up_once_moved() -> None:
    # An older replica wrote the document, with a minute inside it, after a newer one had
    # already moved that minute to its own key: neither count may be lost or doubled.
    state = MemoryState()
    store = _store(state)
    earlier = "2026-12-01T09:05:00Z"
    fresh = await store.load([earlier])
    await store.save(
        fresh.aggregates.count(user_registered_delta(EARLIER), NOW), fresh, [earlier], ["a"]
    )
    head = Aggregates.from_json(state.items[AGGREGATES_KEY].value)
    by_old_replica = head.count(user_registered_delta(EARLIER), NOW)  # minute inside again
    state.items[AGGREGATES_KEY] = Versioned(by_old_replica.to_json(), "9")
    minute = "2026-12-01T10:30:00Z"
    loaded = await store.load([minute])
    assert loaded.aggregates.minutes[earlier].users_registered == 2
    assert loaded.inside == {earlier}
    counted = loaded.aggregates.count(user_registered_delta(NOW), NOW)
    await store.save(counted, loaded, [minute], ["b"])  # no conflict: the key's ETag was read
    assert state.items[minute_state_key(earlier)].value["users_registered"] == 2
    assert state.items[AGGREGATES_KEY].value["minutes"] == {}
    again = await store.load([earlier, minute])
    assert again.aggregates.minutes[earlier].users_registered == 2
    assert again.aggregates.overview.users_registered == 3
