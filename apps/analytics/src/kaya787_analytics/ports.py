"""What the analytics use cases need from the outside world."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kaya787_analytics.domain import Aggregates


@dataclass(frozen=True)
class Snapshot:
    """The stored totals with the minutes asked for, and the ETags a save needs."""

    aggregates: Aggregates  # the totals and those of the minutes asked for that exist
    etag: str | None  # of the totals; None when nothing was counted yet
    minute_etags: Mapping[str, str] = field(default_factory=dict)  # of the minutes read
    # Minutes the totals' document itself carried (written before each minute had its own
    # key): a save moves them out.
    inside: frozenset[str] = frozenset()


class AggregateStore(Protocol):
    async def load(self, minutes: Sequence[str] = ()) -> Snapshot:
        """The totals and these minutes (minute_key spelling), in one store call."""
        ...

    async def counted(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events were counted already."""
        ...

    async def save(
        self,
        aggregates: Aggregates,
        loaded: Snapshot,
        minutes: Sequence[str],
        counted: Sequence[str],
    ) -> None:
        """Replace the totals and write these minutes of `aggregates`, each if still at its
        ETag in `loaded` (inserted when it had none), and mark `counted` as counted, in one
        state transaction.

        Raises kaya787_kit.state.EtagConflict when someone else wrote the totals or one of
        these minutes, or counted one of these events, first; then nothing was written.
        """
        ...
