"""Composition root of the transactions service: the only place its parts are put together."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from dapr.ext.workflow.aio import DaprWorkflowClient
from fastapi import FastAPI
from kaya787_kit.components import STATESTORE
from kaya787_kit.service_app import create_service_app, invoked_token_verifier
from kaya787_kit.sidecar import Sidecar, sidecar_http_client
from kaya787_kit.state import DaprStateStore
from kaya787_kit.tracing import Tracing

from kaya787_transactions import api
from kaya787_transactions.adapters import (
    DaprHistory,
    DaprIdempotencyKeys,
    DaprTransactions,
    InvokedLedger,
)
from kaya787_transactions.service import TransactionsService
from kaya787_transactions.settings import TransactionsSettings
from kaya787_transactions.telemetry import WorkflowMetrics
from kaya787_transactions.workflow import WORKFLOW_NAME, DaprWorkflowStarter, build_runtime


def create_app(settings: TransactionsSettings | None = None) -> FastAPI:
    settings = settings or TransactionsSettings()
    tracing = Tracing(settings.app_id)
    workflow_metrics = WorkflowMetrics(settings.app_id, WORKFLOW_NAME)

    # Activities run on the workflow worker's own event loop, so they cannot share the app's
    # client; building one per activity costs more CPU than the activity (an SSL context
    # each time), so each loop gets one, kept for the life of the process.
    loop_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def activity_http() -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = loop_clients.get(loop)
        if client is None:
            client = sidecar_http_client(settings, tracing, timeout=10.0)
            loop_clients[loop] = client
        return client

    @asynccontextmanager
    async def wiring(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        state = DaprStateStore(sidecar.http, STATESTORE)
        runtime = build_runtime(
            settings.dapr_runtime_host,
            settings.dapr_grpc_port,
            activity_http,
            settings.accounts_app_id,
            tracer=tracing.tracer("kaya787_transactions.workflow"),
            metrics=workflow_metrics,
        )
        await asyncio.to_thread(runtime.start)
        client = DaprWorkflowClient(
            host=settings.dapr_runtime_host, port=str(settings.dapr_grpc_port)
        )
        app.state.transactions = TransactionsService(
            store=DaprTransactions(state),
            keys=DaprIdempotencyKeys(state),
            history=DaprHistory(state),
            ledger=InvokedLedger(sidecar.http, settings.accounts_app_id),
            starter=DaprWorkflowStarter(client, workflow_metrics),
            max_amount=settings.max_amount,
        )
        app.state.token_verifier = invoked_token_verifier(settings, sidecar)
        try:
            yield
        finally:
            await asyncio.to_thread(runtime.shutdown)

    return create_service_app(
        settings,
        title="KAYA787 transactions",
        routers=[api.router],
        wiring=wiring,
        collectors=workflow_metrics.collectors(),
        tracing=tracing,
    )
