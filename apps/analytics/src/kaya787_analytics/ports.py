"""What the analytics use cases need from the outside world."""

from typing import Protocol

from kaya787_analytics.domain import Aggregates


class AggregateStore(Protocol):
    async def load(self) -> tuple[Aggregates, str | None]:
        """The aggregates and their etag (None when nothing was counted yet)."""
        ...

    async def save(self, aggregates: Aggregates, etag: str | None) -> None:
        """Replace the aggregates if they are still at `etag` (insert when None).

        Raises kaya787_kit.state.EtagConflict when someone else wrote them first.
        """
        ...
