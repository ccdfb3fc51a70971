"""Revoked access tokens, known in every app's memory instead of asked per request.

Identity keeps the list of revoked token ids that have not expired yet (access tokens are
short-lived, so it stays small), publishes each revocation as `identity.token-revoked.v1`,
and answers the whole list to its peers. An app loads the list at start, adds what the
events bring (seconds), and loads it again every `resync_seconds`, which bounds how stale
it can be even when an event is lost. When its last successful load is older than
`max_staleness_seconds` it refuses every token (fail closed, 503) rather than trust an old
list.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
from kaya787_contracts.identity import TokenRevokedV1
from pydantic import ValidationError

from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.problems import Problem

_log = logging.getLogger("kaya787.revocations")


class RevocationSource(Protocol):
    async def revoked(self) -> Mapping[str, int]:
        """Every revoked, unexpired token id and its expiry (epoch seconds)."""
        ...


class RevocationFeed:
    def __init__(
        self,
        source: RevocationSource,
        *,
        resync_seconds: float = 10.0,
        max_staleness_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._resync = resync_seconds
        self._max_staleness = max_staleness_seconds
        self._clock = clock
        self._revoked: dict[str, int] = {}
        self._synced_at: float | None = None

    @property
    def synced_at(self) -> float | None:
        return self._synced_at

    async def is_revoked(self, token_id: str) -> bool:
        if self._synced_at is None or self._clock() - self._synced_at > self._max_staleness:
            # Rather no answer than a stale one: a revoked token must not slip through.
            raise Problem(
                503,
                "revocation_unavailable",
                "Token revocation status is unavailable.",
                headers={"Retry-After": "2"},
            )
        return token_id in self._revoked

    def add(self, token_id: str, expires_at: int) -> None:
        if expires_at > self._clock():
            self._revoked[token_id] = expires_at

    async def sync(self) -> None:
        revoked = dict(await self._source.revoked())
        now = self._clock()
        # Entries an event brought after the list was read stay: they are newer.
        merged = {t: e for t, e in {**self._revoked, **revoked}.items() if e > now}
        self._revoked = merged
        self._synced_at = now

    async def run(self) -> None:
        """Load the list now and every `resync_seconds` (failures wait for the next round)."""
        while True:
            try:
                await self.sync()
            except Exception as exc:
                _log.warning("revocation list not loaded: %s", exc)
            await asyncio.sleep(self._resync)

    async def on_event(self, event: CloudEvent) -> Delivery:
        try:
            revoked = TokenRevokedV1.model_validate(event.data)
        except ValidationError:
            return Delivery.DROP  # the next resync has it anyway
        self.add(revoked.token_id, revoked.expires_at)
        return Delivery.SUCCESS


class InvokedRevocations:
    """Identity's list of revoked tokens, through our own sidecar (service invocation)."""

    def __init__(self, sidecar_http: httpx.AsyncClient, identity_app_id: str) -> None:
        self._http = sidecar_http
        self._path = f"/v1.0/invoke/{identity_app_id}/method/internal/revocations"

    async def revoked(self) -> Mapping[str, int]:
        response = await self._http.get(self._path)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return {str(k): int(v) for k, v in dict(body["revoked"]).items()}
