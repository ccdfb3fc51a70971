"""The simulator's use case: answer a pay-in or payout once per id, after a delay."""

from __future__ import annotations

import asyncio

from kaya787_kit.concurrency import EtagConflict

from kaya787_partner.domain import RailOutcome, RailRequest, decide
from kaya787_partner.ports import OutcomeStore


class PartnerService:
    def __init__(self, store: OutcomeStore, *, latency_ms: int, failure_rate: float) -> None:
        self._store = store
        self._latency = latency_ms / 1000
        self._failure_rate = failure_rate

    async def handle(self, request: RailRequest) -> RailOutcome:
        """The rail's answer; asked again (a retry), it answers the same and moves no money."""
        kept = await self._store.get(request.kind, request.id)
        if kept is not None:
            return kept
        await asyncio.sleep(self._latency)
        outcome = decide(request, self._failure_rate)
        try:
            await self._store.insert(request.kind, request.id, outcome)
        except EtagConflict:  # a concurrent retry answered first: its answer stands
            kept = await self._store.get(request.kind, request.id)
            assert kept is not None
            return kept
        return outcome
