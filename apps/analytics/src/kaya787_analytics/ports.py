"""What the analytics use cases need from the outside world."""

from collections.abc import Sequence
from typing import Protocol

from kaya787_analytics.domain import Aggregates


class AggregateStore(Protocol):
    async def load(self) -> tuple[Aggregates, str | None]:
        """The aggregates and their etag (None when nothing was counted yet)."""
        ...

    async def counted(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events were counted already."""
        ...

    async def save(self, aggregates: Aggregates, etag: str | None, counted: Sequence[str]) -> None:
        """Replace the aggregates if they are still at `etag` (insert when None) and mark
        `counted` as counted, in one state transaction.

        Raises kaya787_kit.state.EtagConflict when someone else wrote the aggregates, or
        counted one of these events, first; then nothing was written.
        """
        ...
