"""Composition root of the ops console: the only place its parts are put together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from kaya787_kit.access_log import RequestLogMiddleware
from kaya787_kit.auth import JwksCache, TokenVerifier
from kaya787_kit.problems import install_problem_handlers, problem_response

from kaya787_ops import api
from kaya787_ops.adapters import HttpSidecars, IdentityTokens, JaegerTraces, PrometheusMetrics
from kaya787_ops.kubernetes import (
    KubernetesApi,
    KubernetesControlPlane,
    KubernetesDirectory,
    KubernetesResources,
)
from kaya787_ops.local import LocalControlPlane, LocalDirectory, LocalResources
from kaya787_ops.ports import Unavailable
from kaya787_ops.service import OpsConsole
from kaya787_ops.settings import OpsSettings
from kaya787_ops.signin import NoRevocations, SignIn, SignInConfig

# The page loads only its own files: no inline script, no CDN, no framing. No
# form-action: Chromium applies it to redirects too, and sign-in redirects to identity.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


async def _unavailable(request: Request, exc: Exception) -> Response:
    return problem_response(503, "source_unavailable", str(exc), instance=request.url.path)


def create_app(settings: OpsSettings | None = None) -> FastAPI:
    settings = settings or OpsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=settings.timeout_seconds) as http:
            sidecars = HttpSidecars(http)
            if settings.discovery == "kubernetes":
                kube = KubernetesApi(
                    settings.kubernetes_api,
                    settings.kubernetes_token_file,
                    settings.kubernetes_ca_file,
                    settings.timeout_seconds,
                )
                directory: LocalDirectory | KubernetesDirectory = KubernetesDirectory(kube)
                control: LocalControlPlane | KubernetesControlPlane = KubernetesControlPlane(kube)
                files: LocalResources | KubernetesResources = KubernetesResources(kube)
            else:
                directory = LocalDirectory(settings.root, settings.profile)
                control = LocalControlPlane(http, settings.root, settings.timeout_seconds)
                files = LocalResources(settings.root, settings.profile)
            identity = IdentityTokens(http, settings.identity_url)
            app.state.console = OpsConsole(
                directory=directory,
                sidecars=sidecars,
                resources=files,
                control_plane=control,
                metrics=PrometheusMetrics(http, settings.prometheus_url),
                traces=JaegerTraces(http, settings.jaeger_url),
                profile=settings.profile,
            )
            verifier = TokenVerifier(
                JwksCache(identity.jwks),
                issuer=settings.issuer,
                audience=settings.audience,
                revocations=NoRevocations(),
            )
            app.state.signin = SignIn(
                SignInConfig(
                    issuer=settings.issuer,
                    client_id=settings.client_id,
                    redirect_uri=settings.redirect_uri,
                    scope=settings.required_scope,
                ),
                identity,
                verifier,
            )
            try:
                yield
            finally:
                if isinstance(directory, KubernetesDirectory):
                    await kube.close()

    app = FastAPI(title="KAYA787 ops console", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.secure_cookies = settings.secure_cookies
    install_problem_handlers(app)
    app.add_exception_handler(Unavailable, _unavailable)
    app.include_router(api.pages)
    app.include_router(api.data)
    app.mount("/static", StaticFiles(directory=str(api.STATIC)), name="static")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.add_middleware(RequestLogMiddleware)
    return app
