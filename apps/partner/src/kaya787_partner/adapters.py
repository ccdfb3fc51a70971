"""Dapr state implementation of the simulator's outcome store."""

from kaya787_kit.state import DaprStateStore

from kaya787_partner.domain import RailOutcome


class DaprOutcomeStore:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def get(self, kind: str, request_id: str) -> RailOutcome | None:
        found = await self._state.get(f"{kind}:{request_id}")
        if found is None:
            return None
        return RailOutcome(bool(found.value["ok"]), found.value.get("reason"))

    async def insert(self, kind: str, request_id: str, outcome: RailOutcome) -> None:
        await self._state.insert(f"{kind}:{request_id}", outcome.to_json())
