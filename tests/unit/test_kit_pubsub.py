from fastapi import FastAPI
from fastapi.testclient import TestClient
from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.pubsub import Subscriptions, dead_letter_topic_for


def _client(outcome: Delivery | Exception) -> tuple[TestClient, list[CloudEvent]]:
    seen: list[CloudEvent] = []

    async def handler(event: CloudEvent) -> Delivery:
        seen.append(event)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    subs = Subscriptions("analytics", "pubsub")
    subs.add("identity.user-registered.v1", handler)
    app = FastAPI()
    app.include_router(subs.router())
    return TestClient(app), seen


def test_subscriptions_name_a_dead_letter_topic_per_app() -> None:
    client, _ = _client(Delivery.SUCCESS)
    listed = client.get("/dapr/subscribe").json()
    assert listed == [
        {
            "pubsubname": "pubsub",
            "topic": "identity.user-registered.v1",
            "route": "/events/identity-user-registered-v1",
            "deadLetterTopic": dead_letter_topic_for("identity.user-registered.v1", "analytics"),
        }
    ]


def test_a_dead_letter_topic_has_no_dead_letter_topic_of_its_own() -> None:
    async def handler(event: CloudEvent) -> Delivery:
        return Delivery.SUCCESS

    subs = Subscriptions("analytics", "pubsub")
    dlq = dead_letter_topic_for("identity.user-registered.v1", "analytics")
    subs.add(dlq, handler, dead_letter=False)
    (listed,) = subs.describe()
    assert listed["topic"] == dlq
    assert "deadLetterTopic" not in listed  # not `<dlq>.dlq.analytics`, which no scope allows


def test_handler_outcome_is_returned_explicitly() -> None:
    client, seen = _client(Delivery.DROP)
    reply = client.post(
        "/events/identity-user-registered-v1", json={"id": "e-1", "data": {"user_id": "u"}}
    )
    assert reply.json() == {"status": "DROP"}
    assert seen[0].id == "e-1"


def test_handler_crash_means_retry() -> None:
    client, _ = _client(RuntimeError("store down"))
    reply = client.post("/events/identity-user-registered-v1", json={"id": "e-1"})
    assert reply.json() == {"status": "RETRY"}


def test_undecodable_envelope_is_dropped() -> None:
    client, seen = _client(Delivery.SUCCESS)
    reply = client.post("/events/identity-user-registered-v1", content=b"\x00garbage")
    assert reply.json() == {"status": "DROP"}
    assert not seen
