"""The newest aggregates this replica has seen, kept in memory for /metrics and the stream.

Readers never wait on I/O: the collector reads `aggregates` as it is, and stream clients
wait for the next change. Whatever loads or saves the aggregates publishes them here.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from kaya787_analytics.domain import Aggregates

# The live dashboard's charts show this many minutes; the view keeps no older ones.
VIEW_MINUTES = 60


class LiveView:
    def __init__(self, minutes: int = VIEW_MINUTES) -> None:
        self._keep = minutes
        self._aggregates = Aggregates()
        self._version = 0
        self._changed = asyncio.Event()

    @property
    def aggregates(self) -> Aggregates:
        return self._aggregates

    @property
    def version(self) -> int:
        """Grows by one on every change; a reader compares it with the one it last saw."""
        return self._version

    def merge(self, aggregates: Aggregates) -> None:
        """Publish new totals with only some minutes (those a save wrote, or none): the
        minutes the view holds stay, these replace theirs, the newest `minutes` are kept."""
        minutes = {**self._aggregates.minutes, **aggregates.minutes}
        newest = dict(sorted(minutes.items())[-self._keep :])
        self.publish(replace(aggregates, minutes=newest))

    def publish(self, aggregates: Aggregates) -> None:
        # Every counted event changes the overview or the count of events, so these two
        # tell a change apart from a reload of the same document cheaply.
        old = self._aggregates
        if (old.overview, old.counted) == (aggregates.overview, aggregates.counted):
            return
        self._aggregates = aggregates
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for_change(self, seen_version: int, within: float) -> bool:
        """True once the version differs from `seen_version`; False after `within` s."""
        if self._version != seen_version:
            return True
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout=max(0.0, within))
        except TimeoutError:
            return False
        return True
