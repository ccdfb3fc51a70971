"""Publishing CloudEvents and serving subscriptions with explicit SUCCESS / RETRY / DROP."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.metrics import metrics_of
from kaya787_kit.tracing import event_span, tracing_of

_log = logging.getLogger("kaya787.pubsub")


Handler = Callable[[CloudEvent], Awaitable[Delivery]]


@dataclass(frozen=True)
class _Subscription:
    topic: str
    route: str
    dead_letter_topic: str | None
    handler: Handler


def dead_letter_topic_for(topic: str, app_id: str) -> str:
    return f"{topic}.dlq.{app_id}"


class Subscriptions:
    """Programmatic subscriptions: `/dapr/subscribe` plus one route per topic."""

    def __init__(self, app_id: str, pubsub_name: str) -> None:
        self._app_id = app_id
        self._pubsub = pubsub_name
        self._items: list[_Subscription] = []

    def add(self, topic: str, handler: Handler, *, dead_letter: bool = True) -> None:
        """Serve `topic`; what the handler drops goes to `<topic>.dlq.<app-id>`.

        `dead_letter=False` for a dead-letter topic itself: a letter it cannot take is
        dropped (and logged by Dapr), not sent to a dead-letter topic of its own.
        """
        route = "/events/" + topic.replace(".", "-")
        dlq = dead_letter_topic_for(topic, self._app_id) if dead_letter else None
        self._items.append(_Subscription(topic, route, dlq, handler))

    def describe(self) -> list[dict[str, Any]]:
        described = []
        for s in self._items:
            item = {"pubsubname": self._pubsub, "topic": s.topic, "route": s.route}
            if s.dead_letter_topic is not None:
                item["deadLetterTopic"] = s.dead_letter_topic
            described.append(item)
        return described

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        async def list_subscriptions() -> list[dict[str, Any]]:
            return self.describe()

        router.add_api_route("/dapr/subscribe", list_subscriptions, methods=["GET"])
        for sub in self._items:
            router.add_api_route(sub.route, _endpoint(sub), methods=["POST"])
        return router


def _trace_carrier(event: CloudEvent) -> dict[str, str]:
    return {
        "traceparent": event.traceparent or event.traceid or "",
        "tracestate": event.tracestate or "",
    }


def _endpoint(sub: _Subscription) -> Callable[[Request], Awaitable[dict[str, str]]]:
    async def deliver(request: Request) -> dict[str, str]:
        metrics = metrics_of(request.app)
        try:
            event = CloudEvent.model_validate_json(await request.body())
        except ValidationError:
            # A malformed envelope will never parse: send it to the dead-letter topic.
            _log.warning("undecodable event dropped", extra={"topic": sub.topic})
            if metrics is not None:
                metrics.observe_event(sub.topic, Delivery.DROP, None)
            return {"status": Delivery.DROP}
        tracing = tracing_of(request.app)
        tracer = tracing.tracer(__name__) if tracing else trace.NoOpTracer()
        with event_span(
            tracer, sub.topic, event.id, request.headers, _trace_carrier(event)
        ) as span:
            try:
                outcome = await sub.handler(event)
            except Exception as exc:
                _log.exception(
                    "event handler failed", extra={"topic": sub.topic, "event_id": event.id}
                )
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                outcome = Delivery.RETRY
            span.set_attribute("kaya787.delivery", outcome.value)
        if metrics is not None:
            metrics.observe_event(sub.topic, outcome, event.time)
        return {"status": outcome.value}

    return deliver
