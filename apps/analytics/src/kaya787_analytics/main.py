"""Composition root of the analytics service: the only place its parts are put together."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from kaya787_kit.components import PUBSUB, STATESTORE
from kaya787_kit.pubsub import CloudEvent, Delivery, Subscriptions
from kaya787_kit.service_app import create_service_app, invoked_token_verifier
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.state import DaprStateStore

from kaya787_analytics import api
from kaya787_analytics.adapters import DaprAggregateStore
from kaya787_analytics.events import TRANSACTION_EVENTS_TOPIC, USER_REGISTERED_V1
from kaya787_analytics.service import AnalyticsService
from kaya787_analytics.settings import AnalyticsSettings


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()

    @asynccontextmanager
    async def wiring(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        app.state.analytics = AnalyticsService(
            DaprAggregateStore(DaprStateStore(sidecar.http, STATESTORE))
        )
        app.state.token_verifier = invoked_token_verifier(settings, sidecar)
        yield

    async def on_user_registered(event: CloudEvent) -> Delivery:
        service: AnalyticsService = app.state.analytics
        return await service.on_user_registered(event)

    async def on_transaction_event(event: CloudEvent) -> Delivery:
        service: AnalyticsService = app.state.analytics
        return await service.on_transaction_event(event)

    subscriptions = Subscriptions(settings.app_id, PUBSUB)
    subscriptions.add(USER_REGISTERED_V1, on_user_registered)
    subscriptions.add(TRANSACTION_EVENTS_TOPIC, on_transaction_event)
    app = create_service_app(
        settings,
        title="KAYA787 analytics",
        routers=[api.router, subscriptions.router()],
        wiring=wiring,
    )
    return app
