"""Composition root of the transactions service: the only place its parts are put together."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from dapr.ext.workflow.aio import DaprWorkflowClient
from fastapi import FastAPI
from kaya787_kit.circuit_breaker import BreakerPolicy, CircuitBreaker
from kaya787_kit.circuit_metrics import CircuitBreakerMetrics
from kaya787_kit.components import PUBSUB, STATESTORE
from kaya787_kit.pubsub import Subscriptions
from kaya787_kit.service_app import (
    create_service_app,
    peer_token_verifier,
    subscribe_to_revocations,
)
from kaya787_kit.sidecar import Sidecar, sidecar_http_client
from kaya787_kit.state import DaprStateStore
from kaya787_kit.tracing import Tracing
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from kaya787_transactions import api
from kaya787_transactions.adapters import (
    DaprHistory,
    DaprTransactions,
    InvokedLedger,
    InvokedPartner,
)
from kaya787_transactions.rails import RailSteps
from kaya787_transactions.service import Limits, TransactionsService
from kaya787_transactions.settings import TransactionsSettings
from kaya787_transactions.telemetry import LedgerHealthMetrics, WorkflowMetrics
from kaya787_transactions.workflow import DaprSagaStarter, build_runtime

_log = logging.getLogger("kaya787.transactions")


async def reconcile_forever(
    service: TransactionsService, health: LedgerHealthMetrics, settings: TransactionsSettings
) -> None:
    while True:
        await asyncio.sleep(settings.reconcile_every_seconds)
        try:
            with suppress_http_instrumentation():  # a poll, not a request: no root traces
                overdue, restarted = await service.reconcile(settings.reconcile_after_seconds)
            health.reconciled(overdue, restarted)
        except Exception as exc:  # the sidecar may be restarting: next round
            _log.warning("reconciler pass failed: %s", exc)


def create_app(settings: TransactionsSettings | None = None) -> FastAPI:
    settings = settings or TransactionsSettings()
    tracing = Tracing(settings.app_id)
    workflow_metrics = WorkflowMetrics(settings.app_id, "rails")
    health = LedgerHealthMetrics(settings.app_id)
    # One view of accounts' health per process: the API's calls and the sagas' open and
    # close the same breaker.
    breaker_metrics = CircuitBreakerMetrics(settings.app_id)
    ledger_breaker = CircuitBreaker(
        settings.accounts_app_id,
        BreakerPolicy(
            failures=settings.ledger_breaker_failures,
            window_seconds=settings.ledger_breaker_window_seconds,
            cooldown_seconds=settings.ledger_breaker_cooldown_seconds,
        ),
        listener=breaker_metrics,
    )
    breaker_metrics.watch(ledger_breaker)

    def ledger(http: httpx.AsyncClient) -> InvokedLedger:
        return InvokedLedger(
            http,
            settings.accounts_app_id,
            breaker=ledger_breaker,
            timeout=settings.ledger_timeout_seconds,
        )

    # Activities run on the workflow worker's own event loop, so they cannot share the app's
    # client; building one per activity costs more CPU than the activity (an SSL context
    # each time), so each loop gets one, kept for the life of the process.
    loop_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def loop_http() -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = loop_clients.get(loop)
        if client is None:
            client = sidecar_http_client(settings, tracing, timeout=10.0)
            loop_clients[loop] = client
        return client

    def rail_steps() -> RailSteps:
        http = loop_http()
        return RailSteps(
            store=DaprTransactions(DaprStateStore(http, STATESTORE)),
            ledger=ledger(http),
            partner=InvokedPartner(http, settings.partner_app_id),
            on_refund_refused=health,
        )

    @asynccontextmanager
    async def wiring(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        state = DaprStateStore(sidecar.http, STATESTORE)
        runtime = build_runtime(
            settings.dapr_runtime_host,
            settings.dapr_grpc_port,
            rail_steps,
            tracer=tracing.tracer("kaya787_transactions.workflow"),
            metrics=workflow_metrics,
        )
        await asyncio.to_thread(runtime.start)
        client = DaprWorkflowClient(
            host=settings.dapr_runtime_host, port=str(settings.dapr_grpc_port)
        )
        service = TransactionsService(
            store=DaprTransactions(state),
            history=DaprHistory(state),
            ledger=ledger(sidecar.http),
            starter=DaprSagaStarter(client, workflow_metrics),
            limits=Limits(settings.max_amount_major, settings.daily_payin_major),
        )
        app.state.transactions = service
        reconciler = asyncio.create_task(reconcile_forever(service, health, settings))
        try:
            async with peer_token_verifier(app, settings, sidecar):
                yield
        finally:
            reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
            await asyncio.to_thread(runtime.shutdown)

    subscriptions = Subscriptions(settings.app_id, PUBSUB)
    subscribe_to_revocations(subscriptions, lambda: app)
    app = create_service_app(
        settings,
        title="KAYA787 transactions",
        routers=[api.router, subscriptions.router()],
        wiring=wiring,
        collectors=[
            *workflow_metrics.collectors(),
            *health.collectors(),
            *breaker_metrics.collectors(),
        ],
        tracing=tracing,
    )
    return app
