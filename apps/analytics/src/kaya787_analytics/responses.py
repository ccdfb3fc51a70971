"""What analytics' routes answer, as OpenAPI documents it (docs/api.md names the fields)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OverviewOut(BaseModel):
    """Platform-wide counts since the start, each posting counted once."""

    model_config = ConfigDict(extra="allow")

    transfers_completed: int
    transfers_failed: int
    deposits_completed: int
    volume: dict[str, int] = Field(description="Minor units moved, by currency.")
    users_registered: int
    accounts_opened: int
    as_of: str | None
    dead_letters: dict[str, int]
    transfer_latency_ms: dict[str, Any]


class SeriesOut(BaseModel):
    metric: str
    window_minutes: int
    series: list[dict[str, Any]] = Field(description="One point per minute, oldest first.")
