"""Composition root of the partner simulator: the only place its parts are put together."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from kaya787_kit.components import STATESTORE
from kaya787_kit.service_app import create_service_app
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.state import DaprStateStore

from kaya787_partner import api
from kaya787_partner.adapters import DaprOutcomeStore
from kaya787_partner.service import PartnerService
from kaya787_partner.settings import PartnerSettings


def create_app(settings: PartnerSettings | None = None) -> FastAPI:
    settings = settings or PartnerSettings()

    @asynccontextmanager
    async def wiring(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        app.state.partner = PartnerService(
            DaprOutcomeStore(DaprStateStore(sidecar.http, STATESTORE)),
            latency_ms=settings.latency_ms,
            failure_rate=settings.failure_rate,
        )
        yield

    return create_service_app(
        settings, title="KAYA787 payment partner (simulator)", routers=[api.internal], wiring=wiring
    )
