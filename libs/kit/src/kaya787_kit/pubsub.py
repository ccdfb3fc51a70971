"""Publishing CloudEvents and serving subscriptions with explicit SUCCESS / RETRY / DROP."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

_log = logging.getLogger("kaya787.pubsub")


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
    traceparent: str | None = None
    datacontenttype: str | None = None
    data: Any = None


Handler = Callable[[CloudEvent], Awaitable[Delivery]]


@dataclass(frozen=True)
class _Subscription:
    topic: str
    route: str
    dead_letter_topic: str
    handler: Handler


def dead_letter_topic_for(topic: str, app_id: str) -> str:
    return f"{topic}.dlq.{app_id}"


class Subscriptions:
    """Programmatic subscriptions: `/dapr/subscribe` plus one route per topic."""

    def __init__(self, app_id: str, pubsub_name: str) -> None:
        self._app_id = app_id
        self._pubsub = pubsub_name
        self._items: list[_Subscription] = []

    def add(self, topic: str, handler: Handler) -> None:
        route = "/events/" + topic.replace(".", "-")
        self._items.append(
            _Subscription(topic, route, dead_letter_topic_for(topic, self._app_id), handler)
        )

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "pubsubname": self._pubsub,
                "topic": s.topic,
                "route": s.route,
                "deadLetterTopic": s.dead_letter_topic,
            }
            for s in self._items
        ]

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        async def list_subscriptions() -> list[dict[str, Any]]:
            return self.describe()

        router.add_api_route("/dapr/subscribe", list_subscriptions, methods=["GET"])
        for sub in self._items:
            router.add_api_route(sub.route, _endpoint(sub), methods=["POST"])
        return router


def _endpoint(sub: _Subscription) -> Callable[[Request], Awaitable[dict[str, str]]]:
    async def deliver(request: Request) -> dict[str, str]:
        try:
            event = CloudEvent.model_validate_json(await request.body())
        except ValidationError:
            # A malformed envelope will never parse: send it to the dead-letter topic.
            _log.warning("undecodable event dropped", extra={"topic": sub.topic})
            return {"status": Delivery.DROP}
        try:
            outcome = await sub.handler(event)
        except Exception:
            _log.exception("event handler failed", extra={"topic": sub.topic, "event_id": event.id})
            outcome = Delivery.RETRY
        return {"status": outcome.value}

    return deliver
