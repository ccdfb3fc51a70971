"""The kafka profile seen from outside Dapr: a plain Kafka client on the topics, a broker restart.

A standard client (confluent-kafka, not Dapr) reads what the sidecars wrote, so these tests
check the wire format other teams' consumers will see: CloudEvents envelopes keyed by
account id, in order per key.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from tests.support.ledger import Customer, Ledger, customer
from tests.support.platform import Platform, eventually

pytestmark = [pytest.mark.integration, pytest.mark.profiles("kafka")]

BOOTSTRAP = "127.0.0.1:9092"
TRANSFERS_TOPIC = "accounts.postings.v1"  # every posting, keyed by the customer's account
OVERVIEW = "/api/v1/analytics/overview"


def _consumer(topic: str) -> Consumer:
    """A throwaway group reading `topic` from the start: it sees everything ever written."""
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    return consumer


def _drain(consumer: Consumer, wanted: set[str], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Messages (decoded) until every transaction id in `wanted` was seen, in arrival order."""
    seen: list[dict[str, Any]] = []
    missing = set(wanted)
    deadline = time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            continue
        envelope = json.loads(message.value() or b"{}")
        record = {
            "key": (message.key() or b"").decode(),
            "partition": message.partition(),
            "offset": message.offset(),
            "headers": dict(message.headers() or []),
            "envelope": envelope,
        }
        seen.append(record)
        data = envelope.get("data")
        if isinstance(data, dict):
            missing.discard(str(data.get("transaction_id", "")))
    assert not missing, f"never saw {sorted(missing)} on the topic"
    return seen


@pytest.fixture(scope="module")
def payer(platform: Platform) -> Customer:
    return customer(platform, ("USD", "USD"))


def test_transfer_events_are_cloudevents_keyed_by_account_in_order(
    platform: Platform, payer: Customer
) -> None:
    async def run() -> list[str]:
        async with Ledger(platform) as ledger:
            await ledger.deposit(payer, payer.accounts[0], 10_000)
            ids = []
            for amount in (101, 102, 103, 104, 105):  # one after the other: a known order
                ids.append(
                    (await ledger.transfer(payer, payer.accounts[0], payer.accounts[1], amount))[
                        "id"
                    ]
                )
            return ids

    ids = asyncio.run(run())
    consumer = _consumer(TRANSFERS_TOPIC)
    try:
        records = _drain(consumer, set(ids))
    finally:
        consumer.close()

    ours = [r for r in records if r["envelope"]["data"].get("transaction_id") in ids]
    for record in ours:
        envelope = record["envelope"]
        assert envelope["specversion"] == "1.0"
        assert envelope["source"] == "accounts"
        assert envelope["type"] == "accounts.posting-committed.v1"
        assert envelope["datacontenttype"] == "application/json"
        assert envelope["id"] == envelope["data"]["event_id"]  # stable: dedupe on it
        assert envelope["time"]
        assert envelope["data"]["amount"] in (101, 102, 103, 104, 105)
        assert record["key"] == payer.accounts[0], "partition key must be the source account"
        assert "traceparent" in envelope or "traceparent" in record["headers"]
    assert len({r["partition"] for r in ours}) == 1, "one key, one partition"
    first_seen: list[str] = []
    for record in sorted(ours, key=lambda r: r["offset"]):
        transaction = record["envelope"]["data"]["transaction_id"]
        if transaction not in first_seen:  # at-least-once: a redelivery may repeat one
            first_seen.append(transaction)
    assert first_seen == ids


def test_other_accounts_spread_over_partitions(platform: Platform) -> None:
    """With keys, a topic's partitions are all used (the broker has several per topic)."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        metadata = consumer.list_topics(TRANSFERS_TOPIC, timeout=10)
        partitions = metadata.topics[TRANSFERS_TOPIC].partitions
        assert len(partitions) >= 3
        low_high = [
            consumer.get_watermark_offsets(TopicPartition(TRANSFERS_TOPIC, p), timeout=10)
            for p in partitions
        ]
    finally:
        consumer.close()
    assert sum(high - low for low, high in low_high) > 0


def _completed(platform: Platform, bearer: dict[str, str]) -> int:
    response = platform.public("GET", OVERVIEW, headers=bearer)
    assert response.status_code == 200, response.text
    count: int = response.json()["transfers_completed"]
    return count


def _settled(platform: Platform, bearer: dict[str, str], quiet: float = 3.0) -> int:
    last = _completed(platform, bearer)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = _completed(platform, bearer)
        if now == last:
            return now
        last = now
    raise AssertionError("analytics never settled")


def test_broker_restart_loses_and_doubles_nothing(platform: Platform) -> None:
    who = customer(platform, ("USD", "USD"))
    reader = platform.analyst()
    before = _settled(platform, reader)
    transfers = 30

    async def run() -> list[dict[str, Any]]:
        async with Ledger(platform) as ledger:
            await ledger.deposit(who, who.accounts[0], 1_000_000)

            async def one(i: int) -> dict[str, Any]:
                await asyncio.sleep(i * 0.3)  # a run spread over ~9 s, the broker stops in it
                return await ledger.transfer(who, who.accounts[0], who.accounts[1], 1 + i)

            async def bounce() -> None:
                await asyncio.sleep(3.0)
                await asyncio.to_thread(platform.stack.stop_service, "kafka")
                await asyncio.sleep(8.0)
                await asyncio.to_thread(platform.stack.start_service, "kafka")

            results = await asyncio.gather(*(one(i) for i in range(transfers)), bounce())
            return [r for r in results if r is not None]

    outcomes = asyncio.run(run())
    completed = sum(1 for o in outcomes if o["status"] == "completed")
    assert completed == transfers, [o["status"] for o in outcomes]
    eventually(
        lambda: _completed(platform, reader) >= before + completed,
        timeout=180,
        every=2.0,
        what="analytics to count every transfer after the broker came back",
    )
    assert _settled(platform, reader, quiet=10.0) == before + completed
