"""The dashboard's server-sent events: a snapshot on every change, a heartbeat in between."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from kaya787_analytics.domain import Aggregates
from kaya787_analytics.live import LiveView

Render = Callable[[Aggregates], dict[str, Any]]


def sse_message(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    # One JSON line per data field: json.dumps never emits a raw newline.
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def live_events(
    view: LiveView,
    render: Render,
    *,
    max_seconds: float,
    heartbeat_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[str, None]:
    """Yield SSE messages until `max_seconds` have passed.

    No I/O here: the view is refreshed elsewhere. A client that goes away makes the server
    cancel the response, which closes this generator at its pending wait.
    """
    deadline = clock() + max_seconds
    yield "retry: 2000\n\n"  # what an EventSource client waits before it reconnects
    seen = view.version
    yield sse_message("snapshot", render(view.aggregates), seen)
    next_beat = clock() + heartbeat_seconds
    while (now := clock()) < deadline:
        changed = await view.wait_for_change(seen, min(next_beat, deadline) - now)
        if changed:
            seen = view.version
            yield sse_message("snapshot", render(view.aggregates), seen)
        elif clock() >= next_beat:
            yield sse_message("heartbeat", {"version": seen})
        else:
            continue
        # Any message keeps proxies (NGINX reads time out after 30 s) from closing it.
        next_beat = clock() + heartbeat_seconds
    yield sse_message("end", {"reason": "max_duration", "reconnect": True})
