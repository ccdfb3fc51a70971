"""The dashboard stream generator: a snapshot first, one per change, heartbeats, a bounded end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kaya787_analytics.domain import Aggregates, user_registered_delta
from kaya787_analytics.live import LiveView
from kaya787_analytics.stream import live_events

from tests.fakes.analytics import NOW


def _render(aggregates: Aggregates) -> dict[str, Any]:
    return {"users": aggregates.overview.users_registered}


def _with_users(n: int) -> Aggregates:
    aggregates = Aggregates()
    for _ in range(n):
        aggregates = aggregates.count(user_registered_delta(NOW), NOW).tick()
    return aggregates


def _parse(message: str) -> tuple[str, dict[str, Any]]:
    fields = dict(line.split(": ", 1) for line in message.strip().splitlines())
    return fields["event"], json.loads(fields["data"])


async def _next_event(stream: AsyncIterator[str]) -> tuple[str, dict[str, Any]]:
    while True:
        message = await asyncio.wait_for(anext(stream), timeout=2)
        if "event:" in message:
            return _parse(message)


async def test_emits_a_snapshot_at_once_and_again_on_each_change() -> None:
    view = LiveView()
    stream = live_events(view, _render, max_seconds=30, heartbeat_seconds=30)
    assert await _next_event(stream) == ("snapshot", {"users": 0})
    view.publish(_with_users(1))
    assert await _next_event(stream) == ("snapshot", {"users": 1})
    view.publish(_with_users(2))
    assert await _next_event(stream) == ("snapshot", {"users": 2})
    await stream.aclose()  # what a client disconnect does: the generator just ends


async def test_reloading_the_same_document_is_not_a_change() -> None:
    view = LiveView()
    view.publish(_with_users(1))
    version = view.version
    view.publish(_with_users(1))
    assert view.version == version
    assert not await view.wait_for_change(version, within=0.05)


async def test_heartbeats_while_idle_then_ends_at_its_deadline() -> None:
    view = LiveView()
    stream = live_events(view, _render, max_seconds=0.35, heartbeat_seconds=0.1)
    events = [_parse(m)[0] async for m in stream if "event:" in m]
    assert events[0] == "snapshot"
    assert events[-1] == "end"
    assert 2 <= events.count("heartbeat") <= 4


async def test_a_closed_stream_stops_waiting() -> None:
    view = LiveView()
    stream = live_events(view, _render, max_seconds=60, heartbeat_seconds=60)
    await _next_event(stream)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    pending.cancel()  # the server cancels the response task on disconnect
    await asyncio.gather(pending, return_exceptions=True)
    # Cancelled inside its wait, the generator is finished: nothing more comes out of it.
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
