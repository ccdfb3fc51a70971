"""Composition root of the analytics service: the only place its parts are put together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from kaya787_contracts.accounts import AccountOpenedV1, PostingV1
from kaya787_contracts.identity import UserRegisteredV1
from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.components import PUBSUB, STATESTORE
from kaya787_kit.pubsub import Handler, Subscriptions, dead_letter_topic_for
from kaya787_kit.service_app import (
    create_service_app,
    peer_token_verifier,
    subscribe_to_revocations,
)
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.state import DaprStateStore
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from kaya787_analytics import api
from kaya787_analytics.adapters import DaprAggregateStore
from kaya787_analytics.dashboard import DashboardFiles, dashboard_router
from kaya787_analytics.events import DOMAIN_TOPICS
from kaya787_analytics.kpi_metrics import KpiCollector
from kaya787_analytics.live import LiveView
from kaya787_analytics.service import AnalyticsService
from kaya787_analytics.settings import AnalyticsSettings

_log = logging.getLogger("kaya787.analytics")


async def keep_fresh(service: AnalyticsService, interval: float) -> None:
    """Reload the aggregates now and then: other replicas count too, and /metrics and the
    stream read only what this replica has in memory."""
    while True:
        try:
            # A poll, not a request: traced, it would be a new root trace every few seconds.
            with suppress_http_instrumentation():
                await service.refresh()
        except Exception as exc:  # the sidecar may be restarting: try again next round
            _log.warning("aggregates refresh failed: %s", exc)
        await asyncio.sleep(interval)


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()
    view = LiveView()
    files = DashboardFiles(settings.dashboard_dir)

    @asynccontextmanager
    async def wiring(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        service = AnalyticsService(
            DaprAggregateStore(DaprStateStore(sidecar.http, STATESTORE)), view
        )
        app.state.analytics = service
        app.state.analytics_settings = settings
        files.report()
        refresher = asyncio.create_task(keep_fresh(service, settings.refresh_seconds))
        try:
            async with peer_token_verifier(app, settings, sidecar):
                yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    def use_case(name: str) -> Handler:
        async def handle(event: CloudEvent) -> Delivery:
            service: AnalyticsService = app.state.analytics
            result: Delivery = await getattr(service, name)(event)
            return result

        return handle

    def dead_letters_of(topic: str) -> Handler:
        async def handle(event: CloudEvent) -> Delivery:
            service: AnalyticsService = app.state.analytics
            return await service.on_dead_letter(topic, event)

        return handle

    subscriptions = Subscriptions(settings.app_id, PUBSUB)
    subscriptions.add(UserRegisteredV1.TOPIC, use_case("on_user_registered"))
    subscriptions.add(AccountOpenedV1.TOPIC, use_case("on_account_opened"))
    subscriptions.add(PostingV1.TOPIC, use_case("on_posting"))
    subscribe_to_revocations(subscriptions, lambda: app)
    for topic in DOMAIN_TOPICS:
        subscriptions.add(
            dead_letter_topic_for(topic, settings.app_id), dead_letters_of(topic), dead_letter=False
        )
    app = create_service_app(
        settings,
        title="KAYA787 analytics",
        routers=[api.router, dashboard_router(files), subscriptions.router()],
        wiring=wiring,
        collectors=[KpiCollector(view)],
    )
    return app
