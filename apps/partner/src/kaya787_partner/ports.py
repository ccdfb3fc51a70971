"""What the partner simulator needs from the outside world."""

from typing import Protocol

from kaya787_partner.domain import RailOutcome


class OutcomeStore(Protocol):
    async def get(self, kind: str, request_id: str) -> RailOutcome | None: ...

    async def insert(self, kind: str, request_id: str, outcome: RailOutcome) -> None:
        """Keep the answer; kaya787_kit.state.EtagConflict when one is already kept."""
        ...
