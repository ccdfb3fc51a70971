"""The one Dapr client an app owns: opened once in the lifespan, closed at shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from dapr.aio.clients import DaprClient
from dapr.conf import settings as dapr_settings
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from kaya787_kit.json_logging import current_request_id
from kaya787_kit.settings import ServiceSettings
from kaya787_kit.sidecar_transport import SidecarTransport
from kaya787_kit.tracing import Tracing

_log = logging.getLogger("kaya787.sidecar")

DAPR_TOKEN_HEADER = "dapr-api-token"  # noqa: S105 - a header name, not a secret


class SidecarUnavailable(RuntimeError):
    """The sidecar did not answer in time; the app cannot serve without it."""


async def _forward_request_id(request: httpx.Request) -> None:
    # Dapr passes our headers on to the app it invokes: the callee logs the same request id.
    request_id = current_request_id.get()
    if request_id and "x-request-id" not in request.headers:
        request.headers["x-request-id"] = request_id


def sidecar_http_client(
    settings: ServiceSettings,
    tracing: Tracing | None,
    *,
    timeout: float = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An HTTP client for our sidecar's API: its token, a span and `traceparent` per call.

    `transport` is for tests (httpx.MockTransport); the default is SidecarTransport,
    kept-alive loopback connections with one write per request.
    """
    client = httpx.AsyncClient(
        base_url=settings.sidecar_http_url,
        headers={DAPR_TOKEN_HEADER: settings.dapr_api_token.get_secret_value()},
        timeout=httpx.Timeout(timeout),
        event_hooks={"request": [_forward_request_id]},
        # Kept-alive connections: a new one per request costs both sides a handshake.
        transport=transport or SidecarTransport(max_connections=256, max_idle=128),
    )
    if tracing is not None:
        tracing.instrument_client(client)
    return client


class Sidecar:
    """Owns the gRPC Dapr client and a small HTTP client for the sidecar's health/metadata.

    The SDK's DaprClient blocks (synchronously) until the sidecar answers, for up to a
    minute, so it is built here once at startup after an async wait, never per request.
    """

    def __init__(self, settings: ServiceSettings, tracing: Tracing | None = None) -> None:
        self._settings = settings
        self._tracing = tracing
        self._client: DaprClient | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def client(self) -> DaprClient:
        if self._client is None:
            raise SidecarUnavailable("the Dapr client is not open")
        return self._client

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise SidecarUnavailable("the sidecar HTTP client is not open")
        return self._http

    async def open(self) -> None:
        token = self._settings.dapr_api_token.get_secret_value()
        # The SDK reads its module settings (from the environment at import); pin them to
        # ours so that both always talk to the same sidecar with the same token.
        sdk_settings: dict[str, object] = {
            "DAPR_API_TOKEN": token,
            "DAPR_RUNTIME_HOST": self._settings.dapr_runtime_host,
            "DAPR_HTTP_PORT": self._settings.dapr_http_port,
            "DAPR_GRPC_PORT": self._settings.dapr_grpc_port,
        }
        for name, value in sdk_settings.items():
            setattr(dapr_settings, name, value)
        self._http = sidecar_http_client(self._settings, self._tracing)
        await self._wait_for_outbound(self._settings.sidecar_wait_seconds)
        self._client = DaprClient(address=self._settings.sidecar_grpc_address)
        _log.info("dapr client open", extra={"sidecar": self._settings.sidecar_grpc_address})

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _wait_for_outbound(self, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        last_error = "no answer"
        while time.monotonic() < deadline:
            try:
                # Health polls are not traced: each would be a trace of its own.
                with suppress_http_instrumentation():
                    response = await self.http.get("/v1.0/healthz/outbound")
                if response.is_success:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = type(exc).__name__
            await asyncio.sleep(0.25)
        raise SidecarUnavailable(
            f"sidecar at {self._settings.sidecar_http_url} not ready after {wait_seconds:.0f}s"
            f" ({last_error})"
        )

    async def is_ready(self) -> tuple[bool, str]:
        """Asks for the sidecar's metadata, which needs our API token: proves both work."""
        try:
            with suppress_http_instrumentation():
                response = await self.http.get("/v1.0/metadata")
        except (httpx.HTTPError, SidecarUnavailable) as exc:
            return False, f"sidecar unreachable ({type(exc).__name__})"
        if response.status_code == 401:
            return False, "sidecar rejected our API token"
        if not response.is_success:
            return False, f"sidecar answered HTTP {response.status_code}"
        return True, "ok"
