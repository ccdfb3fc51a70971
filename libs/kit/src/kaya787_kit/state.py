"""State through the sidecar's state API, always first-write concurrency with ETags.

This goes over the sidecar's HTTP API rather than the SDK because the SDK cannot send
per-operation concurrency options inside a transaction, and insert-only writes need them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from kaya787_kit.concurrency import EtagConflict, Versioned
from kaya787_kit.ids import url_segment
from kaya787_kit.trace_context import w3c_fields

_OPTIONS = {"concurrency": "first-write", "consistency": "strong"}

# Metadata of the extra operation that gives a Dapr outbox transaction its event payload
# (`outbox.projection`). Without the content type the outbox renders the payload with Go's
# %v ("map[...]") instead of JSON.
OUTBOX_PROJECTION = {"outbox.projection": "true", "contentType": "application/json"}


class StateStoreError(RuntimeError):
    """The sidecar or the store failed for a reason other than a lost race."""


@dataclass(frozen=True)
class Put:
    """Write `value` (JSON); with `etag=None` the key must not exist yet (insert-only)."""

    key: str
    value: Any
    etag: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delete:
    key: str
    etag: str | None = None


# How stores word a lost race when the sidecar cannot classify it (it then answers 500):
# Redis' version check fails its script with "failed to set key" on inserts and inside
# transactions; PostgreSQL v2 answers an insert-only (first-write) write of an existing key
# with "no item was updated"; other stores mention the etag.
_CONFLICT_MARKERS = ("etag mismatch", "failed to set key", "no item was updated", "etag")


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    text = response.text
    lowered = text.lower()
    if response.status_code == 409 or (
        response.status_code == 500 and any(marker in lowered for marker in _CONFLICT_MARKERS)
    ):
        raise EtagConflict(what)
    raise StateStoreError(f"{what}: HTTP {response.status_code} {text[:300]}")


class DaprStateStore:
    def __init__(self, http: httpx.AsyncClient, store_name: str) -> None:
        self._http = http
        self._base = f"/v1.0/state/{url_segment(store_name)}"

    async def get(self, key: str) -> Versioned[Any] | None:
        response = await self._http.get(
            f"{self._base}/{url_segment(key)}", params={"consistency": "strong"}
        )
        if response.status_code == 204 or (response.is_success and not response.content):
            return None
        _raise_for(response, f"get {key}")
        return Versioned(value=response.json(), etag=response.headers.get("etag", ""))

    async def save(
        self,
        key: str,
        value: Any,
        etag: str | None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """`etag=None` inserts (fails if the key exists); otherwise the etag must still match."""
        item: dict[str, Any] = {"key": key, "value": value, "options": _OPTIONS}
        if etag is not None:
            item["etag"] = etag
        if metadata:
            item["metadata"] = dict(metadata)
        response = await self._http.post(self._base, content=json.dumps([item]))
        _raise_for(response, f"save {key}")

    async def insert(self, key: str, value: Any, metadata: Mapping[str, str] | None = None) -> None:
        """Create `key`; EtagConflict only when it really exists already.

        Redis answers every failed insert the same way ("failed to set key"), a store
        that is down included: the key is read back before a failure is called a lost race.
        """
        try:
            await self.save(key, value, None, metadata)
        except EtagConflict:
            if await self.get(key) is None:
                raise StateStoreError(f"insert {key} failed, and the key is not there") from None
            raise

    async def bulk_get(
        self, keys: Sequence[str], *, confirm_missing: Collection[str] = ()
    ) -> dict[str, Versioned[Any]]:
        """The keys that exist, with their ETags, in one sidecar call.

        A key absent from a bulk answer is only a hint: PostgreSQL v2's bulk get stops
        reading rows when the connection drops mid-answer and reports the rest as missing,
        without an error. Callers that decide something lasting on a key's absence (refuse a
        posting for a missing account) name it in `confirm_missing`: if absent, it is re-read
        alone.
        """
        if not keys:
            return {}
        response = await self._http.post(
            f"{self._base}/bulk",
            content=json.dumps({"keys": list(keys), "parallelism": 16}),
            params={"consistency": "strong"},
        )
        _raise_for(response, f"bulk get of {len(keys)} keys")
        found: dict[str, Versioned[Any]] = {}
        for item in response.json():
            if item.get("error"):
                raise StateStoreError(f"bulk get {item.get('key')}: {item['error']}")
            if "data" in item and item["data"] is not None:
                found[str(item["key"])] = Versioned(item["data"], str(item.get("etag", "")))
        if confirm_missing:
            absent = [key for key in confirm_missing if key not in found]
            for key, confirmed in zip(
                absent, await asyncio.gather(*(self.get(key) for key in absent)), strict=True
            ):
                if confirmed is not None:
                    found[key] = confirmed
        return found

    async def delete(self, key: str, etag: str) -> None:
        response = await self._http.delete(
            f"{self._base}/{url_segment(key)}",
            headers={"If-Match": etag},
            params={"concurrency": "first-write", "consistency": "strong"},
        )
        _raise_for(response, f"delete {key}")

    async def transact(
        self, operations: Sequence[Put | Delete], metadata: Mapping[str, str] | None = None
    ) -> None:
        """All operations commit together or none does."""
        ops: list[dict[str, Any]] = []
        outboxed = {
            op.key for op in operations if isinstance(op, Put) and _is_projection(op.metadata)
        }
        for op in operations:
            request: dict[str, Any] = {"key": op.key, "options": _OPTIONS}
            if op.etag is not None:
                request["etag"] = op.etag
            if isinstance(op, Put):
                request["value"] = op.value
                op_metadata = dict(op.metadata)
                if op.key in outboxed and not _is_projection(op.metadata):
                    # Dapr 1.18's outbox writes an empty `traceparent` into the event, so the
                    # subscriber would start a new trace; an operation's metadata overrides
                    # the event's fields, so the caller's trace context goes there.
                    op_metadata = {**w3c_fields(), **op_metadata}
                if op_metadata:
                    request["metadata"] = op_metadata
                ops.append({"operation": "upsert", "request": request})
            else:
                ops.append({"operation": "delete", "request": request})
        body: dict[str, Any] = {"operations": ops}
        if metadata:
            body["metadata"] = dict(metadata)
        response = await self._http.post(f"{self._base}/transaction", content=json.dumps(body))
        _raise_for(response, "transaction on " + ",".join(op.key for op in operations))


def ttl(seconds: int) -> dict[str, str]:
    """Operation metadata that lets the store expire the key after `seconds`."""
    return {"ttlInSeconds": str(seconds)}


def _is_projection(metadata: Mapping[str, str]) -> bool:
    return metadata.get("outbox.projection") == "true"
