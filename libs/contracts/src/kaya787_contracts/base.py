"""What every event contract shares: the model's rules, its address and its stamps."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

# The largest integer a JSON number keeps exactly through the sidecar (Go's float64); the
# kit's money bounds are the same number (a unit test keeps them equal).
MAX_SAFE_INTEGER: Final = 2**53 - 1


def _rfc3339(value: datetime) -> str:
    # isoformat(), not pydantic's "Z": the producers have always written "+00:00", and a
    # stored outbox row must read the same as a freshly built event.
    return value.isoformat()


Stamp = Annotated[
    AwareDatetime,
    PlainSerializer(_rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An RFC 3339 time with its offset; a stamp without one is refused (a poison event)."""


class Event(BaseModel):
    """One event's payload: the producer builds it and publishes `model_dump(mode="json")`,
    the consumer validates what arrives with the same class.

    Consumers read tolerantly: fields they do not know are ignored (a newer producer may add
    some), and a field that is optional here may be missing. Producers always write every
    field, which is what the exported schema (serialization mode) requires.
    """

    model_config = ConfigDict(
        extra="ignore", frozen=True, json_schema_serialization_defaults_required=True
    )

    TOPIC: ClassVar[str]
    """Where it is published (`<producer>.<name>.v<VERSION>`)."""
    EVENT_TYPES: ClassVar[tuple[str, ...]]
    """The CloudEvent `type`s it comes as (a topic may carry several outcomes)."""
    VERSION: ClassVar[int]
    """Bumped, with a new topic, for any change an old consumer could not read."""
