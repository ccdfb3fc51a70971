"""Settings of the analytics service."""

from pathlib import Path

from kaya787_kit.settings import ServiceSettings
from pydantic import Field


def _checkout_dashboard_dir() -> Path:
    # apps/analytics/src/kaya787_analytics/settings.py -> apps/analytics/dashboard. An
    # image that installs the package elsewhere sets DASHBOARD_DIR instead.
    return Path(__file__).resolve().parents[2] / "dashboard"


class AnalyticsSettings(ServiceSettings):
    app_id: str = "analytics"
    # The dashboard page (src/) and its npm-installed chart library (node_modules/).
    dashboard_dir: Path = Field(default_factory=_checkout_dashboard_dir)
    # A stream ends after this long (or when the caller's token expires, if sooner) and the
    # page reconnects: no connection outlives its credentials, none is held forever.
    stream_max_seconds: float = Field(default=240.0, gt=0, le=3600)
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0, le=60)
    # How often the aggregates are reloaded for /metrics and the stream, so that what other
    # replicas counted shows up here too.
    refresh_seconds: float = Field(default=5.0, gt=0, le=300)
