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
    _, issued = platform.register_and_login()
    return {"authorization": f"Bearer {issued['access_token']}"}


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


def test_malformed_event_is_dropped_and_the_consumer_keeps_going(
    platform: Platform, bearer: dict[str, str]
) -> None:
    before = _settled(platform, bearer)
    with platform.sidecar("identity") as sidecar:
        bad = sidecar.post(f"/v1.0/publish/{PUBSUB}/{TOPIC}", json={"not_a_user": True})
        assert bad.status_code == 204
        good = sidecar.post(f"/v1.0/publish/{PUBSUB}/{TOPIC}", json={"user_id": "after-bad"})
        assert good.status_code == 204
    eventually(lambda: _count(platform, bearer) == before + 1, what="the event after a bad one")
