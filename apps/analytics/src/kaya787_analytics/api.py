"""HTTP routes of analytics: translate requests to use cases, nothing more."""

from typing import Any

from fastapi import APIRouter, Request

from kaya787_analytics.service import AnalyticsService

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


def _service(request: Request) -> AnalyticsService:
    service: AnalyticsService = request.app.state.analytics
    return service


@router.get("/overview")
async def overview(request: Request) -> dict[str, Any]:
    return (await _service(request).overview()).to_json()
