"""HTTP routes of analytics: translate requests to use cases, nothing more."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from kaya787_kit.auth import Principal, require_scopes

from kaya787_analytics.service import AnalyticsService

READ_SCOPE = "analytics:read"

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


def _service(request: Request) -> AnalyticsService:
    service: AnalyticsService = request.app.state.analytics
    return service


@router.get("/overview")
async def overview(
    request: Request, _: Annotated[Principal, Depends(require_scopes(READ_SCOPE))]
) -> dict[str, Any]:
    return (await _service(request).overview()).to_json()
