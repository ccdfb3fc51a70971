"""Settings of the analytics service."""

from kaya787_kit.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    app_id: str = "analytics"
