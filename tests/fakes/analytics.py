"""Fakes of analytics' own ports (not of Dapr) and the builders its unit tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from kaya787_analytics import api
from kaya787_analytics.dashboard import DashboardFiles, dashboard_router
from kaya787_analytics.domain import Aggregates, MinuteBucket
from kaya787_analytics.ports import Snapshot
from kaya787_analytics.service import AnalyticsService
from kaya787_analytics.settings import AnalyticsSettings
from kaya787_kit.cloudevents import CloudEvent
from kaya787_kit.concurrency import EtagConflict
from kaya787_kit.principal import Principal
from kaya787_kit.problems import Problem, install_problem_handlers

NOW = datetime(2026, 12, 1, 10, 30, 15, tzinfo=UTC)


@dataclass
class FakeAggregateStore:
    """Totals under one version, each minute under its own, as the Dapr adapter keeps them."""

    head: Aggregates = field(default_factory=Aggregates)
    version: int = 0
    minutes: dict[str, tuple[MinuteBucket, int]] = field(default_factory=dict)
    conflicts_to_inject: int = 0
    loads: int = 0
    saves: int = 0
    fail_with: Exception | None = None
    counted_ids: set[str] = field(default_factory=set)
    minutes_loaded: list[int] = field(default_factory=list)  # how many minutes each load asked

    @property
    def aggregates(self) -> Aggregates:
        """Everything stored, the minutes included (what the tests look at)."""
        return replace(self.head, minutes={m: b for m, (b, _) in sorted(self.minutes.items())})

    async def load(self, minutes: Sequence[str] = ()) -> Snapshot:
        self.loads += 1
        self.minutes_loaded.append(len(minutes))
        await asyncio.sleep(0)  # a real store call yields to other deliveries
        if self.fail_with is not None:
            raise self.fail_with
        found = {m: self.minutes[m] for m in minutes if m in self.minutes}
        return Snapshot(
            replace(self.head, minutes={m: b for m, (b, _) in found.items()}),
            str(self.version) if self.version else None,
            {m: str(v) for m, (_, v) in found.items()},
        )

    async def counted(self, event_ids: Sequence[str]) -> set[str]:
        return {i for i in event_ids if i in self.counted_ids}

    async def save(
        self,
        aggregates: Aggregates,
        loaded: Snapshot,
        minutes: Sequence[str],
        counted: Sequence[str],
    ) -> None:
        if self.conflicts_to_inject:
            self.conflicts_to_inject -= 1
            raise EtagConflict("aggregates")
        await asyncio.sleep(0)
        # One transaction: a stale ETag or an event counted meanwhile writes nothing.
        stale = loaded.etag != (str(self.version) if self.version else None) or any(
            loaded.minute_etags.get(m) != (str(self.minutes[m][1]) if m in self.minutes else None)
            for m in minutes
        )
        if stale or any(i in self.counted_ids for i in counted):
            raise EtagConflict("aggregates")
        self.saves += 1
        self.head, self.version = aggregates.head(), self.version + 1
        for m in minutes:
            if m in aggregates.minutes:
                self.minutes[m] = (aggregates.minutes[m], self.minutes.get(m, (None, 0))[1] + 1)
        self.counted_ids.update(counted)


def cloud_event(event_id: str, data: Any, time: str | None = "2026-12-01T10:00:00Z") -> CloudEvent:
    return CloudEvent(id=event_id, data=data, time=time)


# A transaction's outcome -> (kind, step, posting status) of the posting that carries it.
OUTCOMES = {
    "transfer-completed": ("transfer", "transfer", "committed"),
    "transfer-failed": ("transfer", "transfer", "rejected"),
    "deposit-completed": ("deposit", "deposit", "committed"),
    "withdrawal-held": ("withdrawal", "hold", "committed"),
}


def transaction(
    event_id: str,
    outcome: str = "transfer-completed",
    amount: int = 1000,
    currency: str = "USD",
    created_at: str = "2026-12-01T10:29:59.500000+00:00",
    posted_at: str = "2026-12-01T10:30:00+00:00",
) -> dict[str, Any]:
    """The accounts.postings.v1 payload of a transaction's posting (the posting id is
    `event_id`)."""
    kind, step, status = OUTCOMES[outcome]
    return {
        "event_type": f"accounts.posting-{status}.v1",
        "event_id": event_id,
        "posting_id": event_id,
        "transaction_id": event_id.split(":")[0],
        "kind": kind,
        "step": step,
        "status": status,
        "code": None if status == "committed" else "insufficient_funds",
        "amount": amount,
        "currency": currency,
        "created_at": created_at,
        "posted_at": posted_at,
    }


class FakeVerifier:
    """Our TokenVerifier's interface: "reader" holds analytics:read, "other" does not."""

    def __init__(self, expires_in: float = 900.0) -> None:
        self._expires_in = expires_in

    async def verify(self, token: str) -> Principal:
        scopes = {"reader": {"analytics:read"}, "other": {"accounts"}}.get(token)
        if scopes is None:
            raise Problem(401, "invalid_token", "bad token")
        expires = int(time.time() + self._expires_in)
        return Principal(subject="u-1", scopes=frozenset(scopes), token_id="j", expires_at=expires)


def analytics_settings(**overrides: Any) -> AnalyticsSettings:
    values: dict[str, Any] = {
        "app_port": 8104,
        "dapr_api_token": "d" * 40,
        "app_api_token": "a" * 40,
        "stream_max_seconds": 0.3,
        "stream_heartbeat_seconds": 0.1,
    }
    return AnalyticsSettings(**(values | overrides))


def api_app(
    store: FakeAggregateStore,
    settings: AnalyticsSettings | None = None,
    dashboard_dir: Path | None = None,
) -> FastAPI:
    """The analytics routes over fakes: no sidecar, no lifespan."""
    settings = settings or analytics_settings()
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(api.router)
    app.include_router(dashboard_router(DashboardFiles(dashboard_dir or settings.dashboard_dir)))
    app.state.analytics = AnalyticsService(store, clock=lambda: NOW)
    app.state.analytics_settings = settings
    app.state.token_verifier = FakeVerifier()
    return app
