"""An event staged in the outbox: what the producer decided, free of any transport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OutboxEvent:
    topic: str
    event_id: str  # the CloudEvent id: consumers dedupe on it
    event_type: str
    partition_key: str  # one key's events keep their order
    data: dict[str, Any]
    traceparent: str = ""  # the producer's trace, so the consumer's spans join it

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "partition_key": self.partition_key,
            "data": self.data,
            "traceparent": self.traceparent,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboxEvent:
        return cls(
            topic=str(data["topic"]),
            event_id=str(data["event_id"]),
            event_type=str(data["event_type"]),
            partition_key=str(data["partition_key"]),
            data=dict(data["data"]),
            traceparent=str(data.get("traceparent", "")),
        )
