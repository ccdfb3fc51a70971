"""Builds a service's FastAPI app the same way for every app: token check, errors, health."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from wsgiref.simple_server import WSGIServer

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from kaya787_contracts.identity import TokenRevokedV1
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from prometheus_client import start_http_server
from prometheus_client.registry import Collector
from uvicorn.config import STARTUP_FAILURE

from kaya787_kit.access_log import RequestLogMiddleware
from kaya787_kit.app_token import AppTokenMiddleware
from kaya787_kit.auth import InvokedJwks, JwksCache, TokenVerifier
from kaya787_kit.body_limit import BodySizeLimitMiddleware
from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.json_logging import configure_logging
from kaya787_kit.load_shedding import InFlightLimitMiddleware
from kaya787_kit.metrics import AppMetrics, install_metrics, metrics_of
from kaya787_kit.problems import install_problem_handlers, problem_response
from kaya787_kit.pubsub import Subscriptions
from kaya787_kit.revocations import InvokedRevocations, RevocationFeed
from kaya787_kit.settings import ServiceSettings
from kaya787_kit.shutdown import Drain, DrainMiddleware, GracefulServer, reuseport_socket
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.tracing import Tracing

# Called inside the lifespan once the sidecar is open: builds the app's adapters and use
# cases, stores them on app.state, and tears them down after the yield.
Wiring = Callable[[FastAPI, Sidecar], AbstractAsyncContextManager[None]]


def _health_router(sidecar: Sidecar, drain: Drain) -> APIRouter:
    router = APIRouter(tags=["health"])

    # Liveness stays 200 while the app drains: its sidecar probes it (app health check) and
    # would stop passing it requests, and Kubernetes would restart it, mid-drain.
    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", response_model=None)
    async def readyz(request: Request) -> JSONResponse | dict[str, str]:
        if drain.draining:
            return problem_response(
                503,
                "not_ready",
                "Shutting down: finishing the requests in flight.",
                instance=request.url.path,
            )
        ok, reason = await sidecar.is_ready()
        if not ok:
            return problem_response(503, "not_ready", reason, instance=request.url.path)
        return {"status": "ready", "sidecar": reason}

    return router


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    wiring: Wiring | None = None,
    sidecar: Sidecar | None = None,
    collectors: Sequence[Collector] = (),
    tracing: Tracing | None = None,
) -> FastAPI:
    """`collectors` are the app's own series (KPIs), served on its `/metrics` with the kit's.

    `tracing` defaults to one configured from the OTEL_* environment (see kit.tracing).
    """
    tracing = tracing or Tracing(settings.app_id)
    sidecar = sidecar or Sidecar(settings, tracing)
    drain = Drain(settings.shutdown_drain_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracing.start()
        try:
            await sidecar.open()
            app.state.sidecar = sidecar
            try:
                if wiring is None:
                    yield
                else:
                    async with wiring(app, sidecar):
                        yield
            finally:
                await sidecar.close()
        finally:
            # Last, so the spans of the shutdown itself leave too; off the loop, as it blocks.
            await asyncio.to_thread(tracing.shutdown)

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.tracing = tracing
    app.state.drain = drain  # begun by serve()'s server on SIGTERM
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(InFlightLimitMiddleware, max_in_flight=settings.max_in_flight)
    # Added last, so it runs first: nothing else sees a request our sidecar did not send.
    app.add_middleware(AppTokenMiddleware, token=settings.app_api_token.get_secret_value())
    # Outside the token check: refusals close their connection too while draining.
    app.add_middleware(DrainMiddleware, drain=drain)
    app.include_router(_health_router(sidecar, drain))
    for router in routers:
        app.include_router(router)
    # Outside the token check, so refused requests are counted and logged too; the server
    # span (instrument_app) wraps all of it, so every log line of a request has its trace id.
    install_metrics(app, AppMetrics(settings.app_id, collectors))
    app.add_middleware(RequestLogMiddleware)
    tracing.instrument_app(app)
    return app


@asynccontextmanager
async def peer_token_verifier(
    app: FastAPI, settings: ServiceSettings, sidecar: Sidecar
) -> AsyncIterator[TokenVerifier]:
    """The verifier of an app other than identity: keys from identity's JWKS, revocations
    from an in-memory list kept fresh by events and a periodic reload (revocations.py).

    Sets `app.state.token_verifier` and `app.state.revocation_feed` for as long as it runs.
    """
    feed = RevocationFeed(
        InvokedRevocations(sidecar.http, settings.identity_app_id),
        resync_seconds=settings.revocation_resync_seconds,
        max_staleness_seconds=settings.revocation_max_staleness_seconds,
    )
    verifier = TokenVerifier(
        JwksCache(InvokedJwks(sidecar.http, settings.identity_app_id)),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        revocations=feed,
    )
    app.state.token_verifier = verifier
    app.state.revocation_feed = feed
    with suppress_http_instrumentation():  # polls, not requests: no traces of their own
        syncing = asyncio.create_task(feed.run())
    try:
        yield verifier
    finally:
        syncing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await syncing


def subscribe_to_revocations(subscriptions: Subscriptions, app: Callable[[], FastAPI]) -> None:
    """Add `identity.token-revoked.v1` to an app's subscriptions (feeding its verifier)."""

    async def handle(event: CloudEvent) -> Delivery:
        feed: RevocationFeed = app().state.revocation_feed
        return await feed.on_event(event)

    # No dead-letter topic: an event that cannot be read is in the next reload anyway.
    subscriptions.add(TokenRevokedV1.TOPIC, handle, dead_letter=False)


def start_metrics_listener(app: FastAPI, settings: ServiceSettings) -> WSGIServer | None:
    """Serve the app's /metrics alone on METRICS_HOST:METRICS_PORT, when that is set."""
    metrics = metrics_of(app)
    if settings.metrics_port is None or metrics is None:
        return None
    server, _ = start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=metrics.registry
    )
    return server


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run one app on loopback with JSON logs; the entry point of every `__main__`.

    SIGTERM drains and exits 0 (kit.shutdown); the port is shared (SO_REUSEPORT) with a
    successor during a rolling restart.
    """
    configure_logging(settings.app_id, settings.log_level)
    start_metrics_listener(app, settings)
    config = uvicorn.Config(
        app,
        host=settings.app_host,
        port=settings.app_port,
        log_config=None,
        # Ours (kit.access_log) names the route template; uvicorn's would log query strings.
        access_log=False,
        loop="uvloop",
        http="httptools",
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )
    drain: Drain = app.state.drain
    server = GracefulServer(config, drain)
    sock = reuseport_socket(settings.app_host, settings.app_port)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
