"""The CloudEvents envelope a subscription handler receives, and what it answers."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Delivery(StrEnum):
    """What the handler tells the sidecar; anything else would be read as RETRY."""

    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 envelope fields a handler may rely on."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    source: str = ""
    type: str = ""
    specversion: str = "1.0"
    topic: str = ""
    time: str | None = None
    # The publisher's trace context; `traceid` is its older name (Dapr sets both).
    traceparent: str | None = None
    traceid: str | None = None
    tracestate: str | None = None
    datacontenttype: str | None = None
    data: Any = None
