"""Settings of the payment-partner simulator."""

from kaya787_kit.settings import ServiceSettings
from pydantic import Field


class PartnerSettings(ServiceSettings):
    app_id: str = "partner"
    # How long the simulated rail takes to answer, and how often it fails at random
    # (deterministic per transaction id). The test amounts in domain.py fail always.
    latency_ms: int = Field(default=20, ge=0, le=60_000)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
