"""A transactional outbox in the app's own state store, relayed to pub/sub.

An event is staged as operations of the same state transaction as the change it reports,
so both commit or neither does. The relay publishes it afterwards, at least once, in order
within a partition, with the partition key and the CloudEvent id the producer chose.

Why not Dapr's outbox (1.18): its relay sleeps one second per message and takes a Kafka
partition one message at a time (about one event a second), it cannot set a partition
key, and a duplicated internal message makes it retry without end.

Layout, per partition p of P (the partition is a hash of the event's partition key):
- `outbox:{p}` = {"count": n}: the head, written with its ETag inside the transaction;
- `outbox:{p}:{seq}`: the events, insert-only, expiring long after they are published;
- `outbox-cursor:{p}` = {"published": m}: written by the relay; m..n-1 are still to go.
A crash between commit and publish leaves m < n, and the next relay pass publishes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
import zlib
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from kaya787_kit.concurrency import EtagConflict, Versioned
from kaya787_kit.outbox_event import OutboxEvent
from kaya787_kit.state import DaprStateStore, Put, ttl

_log = logging.getLogger("kaya787.outbox")

# Kept long after the relay is done with them: a replica that crashed mid-publish is back
# in seconds, and an operator may want to see what was sent.
ITEM_TTL_SECONDS = 7 * 24 * 3600


class EventPublisher(Protocol):
    async def publish(self, event: OutboxEvent) -> None:
        """Hand the event to the broker; raises when it was not taken."""
        ...


class DaprEventPublisher:
    """Publishes through the sidecar's HTTP API with the event's key, id and type."""

    def __init__(self, http: httpx.AsyncClient, pubsub: str) -> None:
        self._http = http
        self._pubsub = pubsub

    async def publish(self, event: OutboxEvent) -> None:
        headers = {"traceparent": event.traceparent} if event.traceparent else {}
        # The relay is a background loop: its own HTTP spans would each start a new trace.
        with suppress_http_instrumentation():
            response = await self._http.post(
                f"/v1.0/publish/{self._pubsub}/{event.topic}",
                json=event.data,
                headers=headers,
                params={
                    "metadata.partitionKey": event.partition_key,
                    "metadata.cloudevent.id": event.event_id,
                    "metadata.cloudevent.type": event.event_type,
                },
            )
        if response.status_code != 204:
            raise RuntimeError(
                f"publish to {event.topic} failed: {response.status_code} {response.text[:200]}"
            )


def head_key(partition: int) -> str:
    return f"outbox:{partition}"


def item_key(partition: int, seq: int) -> str:
    return f"outbox:{partition}:{seq:012d}"


def cursor_key(partition: int) -> str:
    return f"outbox-cursor:{partition}"


class Outbox:
    """Stages events into a state transaction and relays them once it committed."""

    def __init__(
        self,
        state: DaprStateStore,
        publisher: EventPublisher,
        *,
        partitions: int = 16,
        scan_seconds: float = 2.0,
    ) -> None:
        if partitions < 1:
            raise ValueError("an outbox needs at least one partition")
        self._state = state
        self._publisher = publisher
        self.partitions = partitions
        self._scan_seconds = scan_seconds
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._known: dict[tuple[int, int], OutboxEvent] = {}
        self._dirty: set[int] = set(range(partitions))  # everything, once, at start
        self._wake = asyncio.Event()
        self._relaying: dict[int, asyncio.Lock] = {p: asyncio.Lock() for p in range(partitions)}

    def partition_of(self, partition_key: str) -> int:
        return zlib.crc32(partition_key.encode()) % self.partitions

    def lock(self, partition: int) -> asyncio.Lock:
        """Writers of one partition's head queue here instead of racing for its ETag."""
        found = self._locks.get(partition)
        if found is None:
            found = asyncio.Lock()
            self._locks[partition] = found
        return found

    @staticmethod
    def stage(
        partition: int, head: Versioned[Any] | None, events: Sequence[OutboxEvent]
    ) -> tuple[list[Put], int]:
        """The operations that add `events` to the partition, and the first one's seq.

        `head` is `outbox:{partition}` as read (None if it does not exist yet); its ETag
        makes two concurrent writers of the partition conflict instead of overwriting.
        """
        count = int(head.value.get("count", 0)) if head is not None else 0
        puts = [
            Put(head_key(partition), {"count": count + len(events)}, head.etag if head else None)
        ]
        for i, event in enumerate(events):
            puts.append(
                Put(item_key(partition, count + i), event.to_json(), None, ttl(ITEM_TTL_SECONDS))
            )
        return puts, count

    def committed(self, partition: int, first_seq: int, events: Sequence[OutboxEvent]) -> None:
        """Tell the relay that staged events committed: it publishes them from memory."""
        for i, event in enumerate(events):
            self._known[(partition, first_seq + i)] = event
        self._dirty.add(partition)
        self._wake.set()

    async def run(self) -> None:
        """The relay: publish what committed, and every few seconds look for leftovers."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._scan_seconds)
            woken = self._wake.is_set()
            self._wake.clear()
            dirty = set(self._dirty) if woken else set(range(self.partitions))
            self._dirty.clear()
            results = await asyncio.gather(
                *(self.relay(p) for p in sorted(dirty)), return_exceptions=True
            )
            for partition, result in zip(sorted(dirty), results, strict=True):
                if isinstance(result, BaseException):
                    _log.warning("outbox relay of partition %s failed: %s", partition, result)
                    self._dirty.add(partition)  # try again on the next pass

    async def relay(self, partition: int) -> int:
        """Publish the partition's unpublished events in order; how many were published."""
        async with self._relaying[partition]:
            found = await self._state.bulk_get([head_key(partition), cursor_key(partition)])
            head, cursor = found.get(head_key(partition)), found.get(cursor_key(partition))
            count = int(head.value.get("count", 0)) if head else 0
            published = int(cursor.value.get("published", 0)) if cursor else 0
            for key in [k for k in self._known if k[0] == partition and k[1] < published]:
                del self._known[key]  # published by another replica's relay
            if published >= count:
                return 0
            seqs = range(published, count)
            missing = [item_key(partition, s) for s in seqs if (partition, s) not in self._known]
            stored = await self._state.bulk_get(missing) if missing else {}
            sent = 0
            for seq in seqs:
                event = self._known.get((partition, seq))
                if event is None:
                    item = stored.get(item_key(partition, seq))
                    if item is None:
                        # Expired, or a transaction that rolled back after the head moved
                        # (it cannot: they commit together): nothing to send.
                        _log.warning("outbox item %s:%s is gone", partition, seq)
                        continue
                    event = OutboxEvent.from_json(item.value)
                await self._publisher.publish(event)
                sent += 1
            with contextlib.suppress(EtagConflict):  # another replica's relay got there
                await self._state.save(
                    cursor_key(partition), {"published": count}, cursor.etag if cursor else None
                )
            for seq in seqs:
                self._known.pop((partition, seq), None)
            return sent
