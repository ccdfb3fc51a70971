"""The kit's state client: how stores' answers become EtagConflict, and what it sends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from kaya787_kit.state import (
    OUTBOX_PROJECTION,
    DaprStateStore,
    EtagConflict,
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
