"""HTTP routes of analytics: translate requests to use cases, nothing more."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from kaya787_kit.auth import require_scopes
from kaya787_kit.principal import Principal
from kaya787_kit.problems import Problem, problem_responses

from kaya787_analytics.responses import OverviewOut, SeriesOut
from kaya787_analytics.service import AnalyticsService
from kaya787_analytics.settings import AnalyticsSettings
from kaya787_analytics.stream import live_events
from kaya787_analytics.timeseries import QueryError

READ_SCOPE = "analytics:read"

router = APIRouter(
    prefix="/api/v1/analytics", tags=["analytics"], responses=problem_responses(401, 403, 503)
)
Reader = Annotated[Principal, Depends(require_scopes(READ_SCOPE))]


def _service(request: Request) -> AnalyticsService:
    service: AnalyticsService = request.app.state.analytics
    return service


@router.get("/overview")
async def overview(request: Request, _: Reader) -> OverviewOut:
    return OverviewOut.model_validate(await _service(request).overview())


@router.get("/timeseries", responses=problem_responses(422))
async def timeseries(
    request: Request,
    _: Reader,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    window: Annotated[str | None, Query(max_length=16)] = None,
) -> SeriesOut:
    try:
        return SeriesOut.model_validate(await _service(request).timeseries(metric, window))
    except QueryError as exc:
        valid = list(exc.valid) if isinstance(exc.valid, tuple) else [exc.valid]
        raise Problem(
            422,
            f"invalid_{exc.parameter}",
            exc.detail,
            extra={"parameter": exc.parameter, "valid": valid},
        ) from exc


@router.get("/stream")
async def stream(request: Request, principal: Reader) -> StreamingResponse:
    settings: AnalyticsSettings = request.app.state.analytics_settings
    service = _service(request)
    await service.refresh()  # the first snapshot is the stored state, not a cached one
    # The stream stops when the token would no longer be accepted; the page reconnects.
    lifetime = min(settings.stream_max_seconds, principal.expires_at - time.time())
    events = live_events(
        service.view,
        service.live_snapshot,
        max_seconds=max(0.0, lifetime),
        heartbeat_seconds=settings.stream_heartbeat_seconds,
    )
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        # NGINX buffers proxied responses unless told not to, which would hold events back.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
