"""Composition root of the accounts service: the only place its parts are put together."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from kaya787_kit.components import PUBSUB, STATESTORE
from kaya787_kit.outbox import DaprEventPublisher, Outbox
from kaya787_kit.pubsub import Subscriptions
from kaya787_kit.service_app import (
    create_service_app,
    peer_token_verifier,
    subscribe_to_revocations,
)
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.state import DaprStateStore

from kaya787_accounts import api
from kaya787_accounts.adapters import DaprAccounts
from kaya787_accounts.service import AccountsService
from kaya787_accounts.settings import AccountsSettings


def create_app(settings: AccountsSettings | None = None) -> FastAPI:
    settings = settings or AccountsSettings()

    @asynccontextmanager
    async def wiring(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        state = DaprStateStore(sidecar.http, STATESTORE)
        outbox = Outbox(
            state,
            DaprEventPublisher(sidecar.http, PUBSUB),
            partitions=settings.outbox_partitions,
        )
        app.state.accounts = AccountsService(DaprAccounts(state, outbox))
        relay = asyncio.create_task(outbox.run())
        try:
            async with peer_token_verifier(app, settings, sidecar):
                yield
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay

    subscriptions = Subscriptions(settings.app_id, PUBSUB)
    subscribe_to_revocations(subscriptions, lambda: app)
    app = create_service_app(
        settings,
        title="KAYA787 accounts",
        routers=[api.public, api.internal, subscriptions.router()],
        wiring=wiring,
    )
    return app
