"""One access-log line per request, and the request id every other line of it carries."""

from __future__ import annotations

import logging
import re
import time
import uuid

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kaya787_kit.json_logging import current_request_id
from kaya787_kit.metrics import route_template

REQUEST_ID_HEADER = "x-request-id"
# Only ids that cannot forge log content or flood an index are taken from the caller;
# anything else is replaced, never echoed.
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes log at DEBUG: at INFO they would be most of every log.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_log = logging.getLogger("kaya787.access")


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            presented = bytes(value).decode("latin-1")
            if _ACCEPTED_ID.match(presented):
                return presented
            break
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Sets the request id (X-Request-ID in, same header out) and logs the outcome.

    The line names the route template, never the raw path or query string, which could
    hold ids or credentials (`?token=`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        reset = current_request_id.set(request_id)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("kaya787.request_id", request_id)
        status = 500  # what the server answers if the app raises before responding
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != REQUEST_ID_HEADER.encode()
                ]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._app(scope, receive, send_wrapper)
        finally:
            level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
            _log.log(
                level,
                "request",
                extra={
                    "method": scope["method"],
                    "route": route_template(scope),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
            current_request_id.reset(reset)
