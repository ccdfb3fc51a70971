"""The kit's state client: how stores' answers become EtagConflict, and what it sends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kaya787_kit.concurrency import EtagConflict
from kaya787_kit.state import (
    OUTBOX_PROJECTION,
    DaprStateStore,
    Put,
    StateStoreError,
)
from opentelemetry.sdk.trace import TracerProvider


def _store(answer: httpx.Response, sent: list[dict[str, Any]]) -> DaprStateStore:
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content or b"{}"))
        return answer

    client = httpx.AsyncClient(base_url="http://sidecar", transport=httpx.MockTransport(handle))
    return DaprStateStore(client, "statestore")


@pytest.mark.parametrize(
    "body",
    [
        '{"errorCode":"ERR_STATE_SAVE","message":"failed saving state in state store'
        ' statestore: no item was updated"}',  # PostgreSQL v2, insert-only on an existing key
        '{"errorCode":"ERR_STATE_SAVE","message":"failed to set key txn:1"}',  # Redis
        '{"errorCode":"ERR_STATE_SAVE","message":"possible etag mismatch"}',
    ],
)
async def test_lost_races_are_conflicts_whatever_the_store_calls_them(body: str) -> None:
    store = _store(httpx.Response(500, text=body), [])
    with pytest.raises(EtagConflict):
        await store.save("k", {"v": 1}, etag=None)


async def test_other_failures_are_store_errors_not_conflicts() -> None:
    store = _store(httpx.Response(500, text='{"message":"connection refused"}'), [])
    with pytest.raises(StateStoreError):
        await store.save("k", {"v": 1}, etag=None)


async def test_an_outboxed_write_carries_the_callers_trace_context() -> None:
    sent: list[dict[str, Any]] = []
    store = _store(httpx.Response(204), sent)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("finish") as span:
        await store.transact(
            [
                Put("txn:1", {"status": "completed"}, metadata={"type": "t.v1"}),
                Put("txn:1", {"event": 1}, metadata=OUTBOX_PROJECTION),
                Put("other", {"x": 1}),
            ]
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    record, projection, other = (op["request"] for op in sent[0]["operations"])
    assert record["metadata"]["type"] == "t.v1"
    assert record["metadata"]["traceparent"].split("-")[1] == trace_id
    assert "traceparent" not in projection["metadata"]  # the event's payload stays as given
    assert "metadata" not in other  # not outboxed: nothing added


async def test_untraced_writes_add_nothing() -> None:
    sent: list[dict[str, Any]] = []
    store = _store(httpx.Response(204), sent)
    await store.transact([Put("k", {"a": 1}), Put("k", {"event": 1}, metadata=OUTBOX_PROJECTION)])
    assert "metadata" not in sent[0]["operations"][0]["request"]


def _routed(save_answer: httpx.Response, get_answer: httpx.Response) -> DaprStateStore:
    def handle(request: httpx.Request) -> httpx.Response:
        return save_answer if request.method == "POST" else get_answer

    client = httpx.AsyncClient(base_url="http://sidecar", transport=httpx.MockTransport(handle))
    return DaprStateStore(client, "statestore")


REDIS_FAILED_INSERT = '{"errorCode":"ERR_STATE_SAVE","message":"failed to set key x"}'


async def test_a_failed_insert_whose_key_is_absent_is_a_store_error_not_a_conflict() -> None:
    # Redis words every failed insert alike; read back, the key is not there: not a race.
    store = _routed(httpx.Response(500, text=REDIS_FAILED_INSERT), httpx.Response(204))
    with pytest.raises(StateStoreError):
        await store.insert("x", {"v": 1})


async def test_a_failed_insert_whose_key_exists_is_a_conflict() -> None:
    store = _routed(
        httpx.Response(500, text=REDIS_FAILED_INSERT),
        httpx.Response(200, json={"v": 0}, headers={"etag": "1"}),
    )
    with pytest.raises(EtagConflict):
        await store.insert("x", {"v": 1})


async def test_bulk_get_returns_what_exists_with_etags_and_raises_item_errors() -> None:
    answer = [
        {"key": "a", "data": {"v": 1}, "etag": "7"},
        {"key": "b"},  # absent
    ]
    found = await _store(httpx.Response(200, json=answer), []).bulk_get(["a", "b"])
    assert {k: (v.value, v.etag) for k, v in found.items()} == {"a": ({"v": 1}, "7")}
    broken = _store(httpx.Response(200, json=[{"key": "a", "error": "boom"}]), [])
    with pytest.raises(StateStoreError):
        await broken.bulk_get(["a"])


async def test_confirm_missing_rereads_keys_a_bulk_answer_dropped() -> None:
    # PostgreSQL v2's bulk get reports every key as absent when the connection drops
    # mid-answer; a single get of the same key then fails or finds it.
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bulk"):
            return httpx.Response(200, json=[{"key": "a"}, {"key": "b"}])
        if request.url.path.endswith("/a"):
            return httpx.Response(200, json={"v": 1}, headers={"etag": "3"})
        if request.url.path.endswith("/b"):
            return httpx.Response(204)
        return httpx.Response(500, text="down")

    client = httpx.AsyncClient(base_url="http://sidecar", transport=httpx.MockTransport(handle))
    store = DaprStateStore(client, "statestore")
    assert await store.bulk_get(["a", "b"]) == {}
    found = await store.bulk_get(["a", "b"], confirm_missing=["a", "b"])
    assert {k: (v.value, v.etag) for k, v in found.items()} == {"a": ({"v": 1}, "3")}
    with pytest.raises(StateStoreError):
        await store.bulk_get(["c", "d"], confirm_missing=["c"])
