"""What the platform really published, read from the broker, against the committed schemas.

A register, an account opened, a deposit, a transfer, a refused transfer and a revoked token
go through the public API; then the events are read back from the broker itself (Redis
Streams on `local`, Kafka on `kafka`: no Dapr on the reading side), and each payload must be
valid against libs/contracts/schemas/<topic>.json and come with one of its CloudEvent types.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError
from kaya787_contracts.accounts import AccountOpenedV1, PostingV1
from kaya787_contracts.identity import TokenRevokedV1, UserRegisteredV1

from tests.support.contracts import problems
from tests.support.ledger import Customer, Ledger, customer
from tests.support.platform import Platform, eventually

pytestmark = pytest.mark.integration

REDIS_PORT = "6380"
KAFKA = "127.0.0.1:9092"
# Newest first: far more than one test run adds, so the events just made are all in reach.
REDIS_WINDOW = 5_000


def _redis_envelopes(platform: Platform, topic: str) -> list[dict[str, Any]]:
    """The CloudEvents Dapr wrote to the topic's stream (field `data`), newest first."""
    command = ["redis-cli", "-p", REDIS_PORT, "--no-auth-warning", "--json"]
    command += ["XREVRANGE", topic, "+", "-", "COUNT", str(REDIS_WINDOW)]
    answer = subprocess.run(
        command,
        env={**os.environ, "REDISCLI_AUTH": platform.secret("redis-password")},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    envelopes = []
    for _, fields in json.loads(answer.stdout or "[]"):
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        envelopes.append(json.loads(values["data"]))
    return envelopes


class _KafkaTopic:
    """A throwaway consumer group reading the topic from the start, kept across polls."""

    def __init__(self, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": KAFKA,
                "group.id": f"contracts-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic])
        self.seen: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        for message in self._consumer.consume(num_messages=500, timeout=1.0):
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                continue
            self.seen.append(json.loads(message.value() or b"{}"))
        return self.seen

    def close(self) -> None:
        self._consumer.close()


def _find(
    platform: Platform, topic: str, mine: Callable[[dict[str, Any]], bool], count: int
) -> list[dict[str, Any]]:
    """The `count` envelopes of ours on `topic`, as the broker holds them."""
    if os.environ.get("KAYA787_PROFILE", "local") == "kafka":
        reader = _KafkaTopic(topic)
        try:
            return eventually(
                lambda: _ours(reader.read(), mine, count), timeout=60, what=f"{count} on {topic}"
            )
        finally:
            reader.close()
    return eventually(
        lambda: _ours(_redis_envelopes(platform, topic), mine, count),
        timeout=60,
        what=f"{count} events of ours on {topic}",
    )


def _ours(
    envelopes: list[dict[str, Any]], mine: Callable[[dict[str, Any]], bool], count: int
) -> list[dict[str, Any]] | None:
    found = [e for e in envelopes if isinstance(e.get("data"), dict) and mine(e["data"])]
    # At least once: a redelivered event may be there twice; one of each is enough.
    unique = list({json.dumps(e["data"], sort_keys=True): e for e in found}.values())
    return unique if len(unique) >= count else None


def _token_id(access_token: str) -> str:
    payload = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return str(claims["jti"])


def _valid(topic: str, types: tuple[str, ...], envelopes: list[dict[str, Any]]) -> None:
    for envelope in envelopes:
        assert envelope["type"] in types, envelope
        assert problems(topic, envelope["data"]) == [], envelope["data"]


@pytest.fixture(scope="module")
def payer(platform: Platform) -> Customer:
    return customer(platform, ("USD", "USD"))


def test_what_the_platform_publishes_matches_the_committed_schemas(
    platform: Platform, payer: Customer
) -> None:
    me = platform.public("GET", "/api/v1/users/me", headers=payer.bearer)
    assert me.status_code == 200, me.text
    user_id = me.json()["id"]
    source, target = payer.accounts

    async def move_money() -> list[str]:
        async with Ledger(platform) as ledger:
            deposit = await ledger.deposit(payer, source, 1_000)
            sent = await ledger.transfer(payer, source, target, 400)
            refused = await ledger.transfer(payer, source, target, 10_000)
        assert (deposit["status"], sent["status"], refused["status"]) == (
            "completed",
            "completed",
            "failed",
        )
        return [deposit["id"], sent["id"], refused["id"]]

    transactions = asyncio.run(move_money())
    token = payer.bearer["authorization"].removeprefix("Bearer ")
    revoked = platform.public("POST", "/oauth2/revoke", data={"token": token})
    assert revoked.status_code == 200, revoked.text

    registered = _find(
        platform, UserRegisteredV1.TOPIC, lambda d: d.get("user_id") == user_id, count=1
    )
    _valid(UserRegisteredV1.TOPIC, UserRegisteredV1.EVENT_TYPES, registered)

    opened = _find(
        platform, AccountOpenedV1.TOPIC, lambda d: d.get("account_id") in payer.accounts, count=2
    )
    _valid(AccountOpenedV1.TOPIC, AccountOpenedV1.EVENT_TYPES, opened)

    postings = _find(
        platform, PostingV1.TOPIC, lambda d: d.get("transaction_id") in transactions, count=3
    )
    _valid(PostingV1.TOPIC, PostingV1.EVENT_TYPES, postings)
    assert {e["type"] for e in postings} == set(PostingV1.EVENT_TYPES)  # both outcomes seen

    jti = _token_id(token)
    revocations = _find(platform, TokenRevokedV1.TOPIC, lambda d: d.get("token_id") == jti, count=1)
    _valid(TokenRevokedV1.TOPIC, TokenRevokedV1.EVENT_TYPES, revocations)
