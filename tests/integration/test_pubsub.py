"""A pub/sub round trip between two apps on the real broker, deduplicated by event id."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kaya787_kit.components import PUBSUB

from tests.support.platform import Platform, eventually

pytestmark = pytest.mark.integration

TOPIC = "identity.user-registered.v1"
OVERVIEW = "/api/v1/analytics/overview"


@pytest.fixture(scope="module")
def bearer(platform: Platform) -> dict[str, str]:
    """A reader of platform-wide figures (a service token: customers cannot read them)."""
    return platform.analyst()


def _count(platform: Platform, bearer: dict[str, str]) -> int:
    response = platform.public("GET", OVERVIEW, headers=bearer)
    assert response.status_code == 200, response.text
    count: int = response.json()["users_registered"]
    return count


def _settled(platform: Platform, bearer: dict[str, str]) -> int:
    """The count once no event is in flight (other tests register users too)."""
    last = _count(platform, bearer)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(1.5)
        now = _count(platform, bearer)
        if now == last:
            return now
        last = now
    raise AssertionError("analytics never settled")


def _publish_cloudevent(platform: Platform, event_id: str) -> None:
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "source": "identity",
        "type": TOPIC,
        "datacontenttype": "application/json",
        "data": {"user_id": f"user-{event_id}"},
    }
    with platform.sidecar("identity") as sidecar:
        response = sidecar.post(
            f"/v1.0/publish/{PUBSUB}/{TOPIC}",
            content=json.dumps(envelope),
            headers={"content-type": "application/cloudevents+json"},
        )
    assert response.status_code == 204, response.text


def test_event_published_by_identity_is_counted_by_analytics(
    platform: Platform, bearer: dict[str, str]
) -> None:
    before = _settled(platform, bearer)
    with platform.sidecar("identity") as sidecar:
        response = sidecar.post(
            f"/v1.0/publish/{PUBSUB}/{TOPIC}", json={"user_id": f"user-{uuid.uuid4()}"}
        )
    assert response.status_code == 204, response.text
    eventually(lambda: _count(platform, bearer) == before + 1, what="analytics to count it")


def test_redelivered_event_id_counts_once(platform: Platform, bearer: dict[str, str]) -> None:
    before = _settled(platform, bearer)
    duplicate = str(uuid.uuid4())
    _publish_cloudevent(platform, duplicate)
    _publish_cloudevent(platform, duplicate)
    # A fresh event after the duplicate: once it is counted, the duplicate was handled too.
    _publish_cloudevent(platform, str(uuid.uuid4()))
    eventually(lambda: _count(platform, bearer) >= before + 2, what="both ids counted")
    assert _settled(platform, bearer) == before + 2


def _dead_letters(platform: Platform, bearer: dict[str, str], topic: str) -> int:
    response = platform.public("GET", OVERVIEW, headers=bearer)
    assert response.status_code == 200, response.text
    count: int = response.json()["dead_letters"].get(topic, 0)
    return count


def test_poison_event_ends_on_the_dead_letter_topic_and_the_consumer_keeps_going(
    platform: Platform, bearer: dict[str, str]
) -> None:
    before = _settled(platform, bearer)
    dead_before = _dead_letters(platform, bearer, TOPIC)
    with platform.sidecar("identity") as sidecar:
        bad = sidecar.post(f"/v1.0/publish/{PUBSUB}/{TOPIC}", json={"not_a_user": True})
        assert bad.status_code == 204
        good = sidecar.post(f"/v1.0/publish/{PUBSUB}/{TOPIC}", json={"user_id": "after-bad"})
        assert good.status_code == 204
    eventually(lambda: _count(platform, bearer) == before + 1, what="the event after a bad one")
    # analytics reads its own dead-letter topics back and counts what landed there.
    eventually(
        lambda: _dead_letters(platform, bearer, TOPIC) == dead_before + 1,
        timeout=30,
        what="the poison event on identity.user-registered.v1.dlq.analytics",
    )


POSTINGS_TOPIC = "accounts.postings.v1"


def _transfer_totals(platform: Platform, bearer: dict[str, str]) -> tuple[int, int]:
    body = platform.public("GET", OVERVIEW, headers=bearer).json()
    return int(body["transfers_completed"]), int(body["volume"].get("EUR", 0))


def test_one_transfer_event_delivered_twice_counts_once(
    platform: Platform, bearer: dict[str, str]
) -> None:
    """The same posting (its event_id) under two CloudEvent ids, as a redelivery may come."""
    _settled(platform, bearer)
    before = _transfer_totals(platform, bearer)
    transaction = str(uuid.uuid4())
    event = {
        "event_type": "accounts.posting-committed.v1",
        "event_id": f"{transaction}:transfer",
        "posting_id": f"{transaction}:transfer",
        "transaction_id": transaction,
        "kind": "transfer",
        "step": "transfer",
        "status": "committed",
        "amount": 777,
        "currency": "EUR",
        "created_at": "2026-12-01T10:00:00+00:00",
        "posted_at": "2026-12-01T10:00:01+00:00",
    }
    with platform.sidecar("accounts") as sidecar:
        for _ in range(2):
            envelope = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "accounts",
                "type": event["event_type"],
                "datacontenttype": "application/json",
                "data": event,
            }
            response = sidecar.post(
                f"/v1.0/publish/{PUBSUB}/{POSTINGS_TOPIC}",
                content=json.dumps(envelope),
                headers={"content-type": "application/cloudevents+json"},
            )
            assert response.status_code == 204, response.text
    eventually(
        lambda: _transfer_totals(platform, bearer)[0] >= before[0] + 1,
        what="the transfer counted",
    )
    _settled(platform, bearer)
    assert _transfer_totals(platform, bearer) == (before[0] + 1, before[1] + 777)
