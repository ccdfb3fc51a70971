"""Shed load at the edge of each app: past a bound of requests in flight, answer 503 at once.

Without it an overloaded app queues requests until its sidecar client's pool times out and
they end as 500s; with it the excess gets a clear problem and `Retry-After`, and what was
accepted keeps its latency. Health, metrics and pub/sub deliveries are never shed: probes
must see the app alive, and a refused delivery is only redelivered later.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from kaya787_kit.problems import problem_response

_NEVER_SHED = ("/healthz", "/readyz", "/metrics", "/dapr/", "/events/")


class InFlightLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_in_flight: int, retry_after: int = 1) -> None:
        self._app = app
        self._max = max_in_flight
        self._retry_after = str(retry_after)
        self.in_flight = 0
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(_NEVER_SHED):
            await self._app(scope, receive, send)
            return
        if self.in_flight >= self._max:
            self.shed += 1
            response = problem_response(
                503,
                "overloaded",
                "The service is at capacity; retry shortly.",
                headers={"Retry-After": self._retry_after},
                instance=path,
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self._app(scope, receive, send)
        finally:
            self.in_flight -= 1
