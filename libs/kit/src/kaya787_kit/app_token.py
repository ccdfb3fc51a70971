"""Reject calls that do not carry the token our sidecar sends (`dapr-api-token`).

The app listens on loopback only, but anything on the host could reach loopback;
the token proves the caller is our own sidecar.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from kaya787_kit.problems import problem_response

APP_TOKEN_HEADER = "dapr-api-token"  # noqa: S105 - a header name, not a secret

# Liveness and readiness carry no data and are probed by kubelet, which has no token;
# Prometheus scrapes /metrics directly (not through the sidecar), so it has none either.
# Metrics hold counts and durations per route template, never user data.
UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AppTokenMiddleware:
    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("an app API token is required")
        self._app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNAUTHENTICATED_PATHS:
            await self._app(scope, receive, send)
            return
        presented = b""
        for name, value in scope["headers"]:
            if name == APP_TOKEN_HEADER.encode():
                presented = value
                break
        if not hmac.compare_digest(presented, self._token):
            response = problem_response(
                401,
                "app_token_invalid",
                "This service only accepts calls from its own Dapr sidecar.",
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)
