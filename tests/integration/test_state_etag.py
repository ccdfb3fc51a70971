"""State through a real sidecar: ETags detect every lost race."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kaya787_kit.components import STATESTORE
from kaya787_kit.concurrency import EtagConflict, retry_on_conflict
from kaya787_kit.state import DaprStateStore, Delete, Put

from tests.support.platform import Platform

pytestmark = pytest.mark.integration


async def test_stale_etag_is_rejected_and_nothing_is_overwritten(platform: Platform) -> None:
    key = f"test-etag-{uuid.uuid4()}"
    async with platform.async_sidecar("accounts") as http:
        store = DaprStateStore(http, STATESTORE)
        assert await store.get(key) is None
        await store.save(key, {"balance": 100}, etag=None)
        first = await store.get(key)
        assert first is not None
        assert first.value == {"balance": 100}
        await store.save(key, {"balance": 70}, etag=first.etag)
        with pytest.raises(EtagConflict):
            await store.save(key, {"balance": 999}, etag=first.etag)  # stale
        with pytest.raises(EtagConflict):
            await store.save(key, {"balance": 999}, etag=None)  # insert over an existing key
        current = await store.get(key)
        assert current is not None
        assert current.value == {"balance": 70}
        assert current.etag != first.etag


async def test_transaction_with_a_stale_etag_is_reported(platform: Platform) -> None:
    a, b = f"test-tx-a-{uuid.uuid4()}", f"test-tx-b-{uuid.uuid4()}"
    async with platform.async_sidecar("accounts") as http:
        store = DaprStateStore(http, STATESTORE)
        await store.transact([Put(a, {"v": 1}), Put(b, {"v": 1})])
        va, vb = await store.get(a), await store.get(b)
        assert va is not None
        assert vb is not None
        assert (va.value, vb.value) == ({"v": 1}, {"v": 1})
        await store.save(b, {"v": 2}, etag=vb.etag)  # someone else moves b on
        with pytest.raises(EtagConflict):
            await store.transact([Put(a, {"v": 10}, etag=va.etag), Put(b, {"v": 10}, etag=vb.etag)])
        after_b = await store.get(b)
        assert after_b is not None
        assert after_b.value == {"v": 2}  # the stale write never lands
        after_a = await store.get(a)
        assert after_a is not None
        # The ledger's store rolls back (SQLite locally, PostgreSQL on kafka): the other
        # operation of the failed transaction is not written either.
        assert after_a.value == {"v": 1}
        await store.transact([Delete(a, etag=after_a.etag), Delete(b, etag=after_b.etag)])
        assert await store.get(a) is None


async def test_concurrent_increments_with_retries_lose_no_update(platform: Platform) -> None:
    key = f"test-counter-{uuid.uuid4()}"
    async with platform.async_sidecar("accounts") as http:
        store = DaprStateStore(http, STATESTORE)
        await store.save(key, {"n": 0}, etag=None)
        conflicts = 0

        async def increment() -> None:
            async def attempt() -> None:
                nonlocal conflicts
                current = await store.get(key)
                assert current is not None
                try:
                    await store.save(key, {"n": current.value["n"] + 1}, etag=current.etag)
                except EtagConflict:
                    conflicts += 1
                    raise

            await retry_on_conflict(attempt, attempts=50)

        await asyncio.gather(*(increment() for _ in range(20)))
        final = await store.get(key)
        assert final is not None
        assert final.value == {"n": 20}
        assert conflicts > 0  # the races really happened and were caught


async def test_a_failed_insert_in_a_transaction_writes_nothing_on_the_ledgers_store(
    platform: Platform,
) -> None:
    fresh, taken = f"test-tx-new-{uuid.uuid4()}", f"test-tx-taken-{uuid.uuid4()}"
    async with platform.async_sidecar("accounts") as http:
        store = DaprStateStore(http, STATESTORE)
        await store.insert(taken, {"v": 1})
        with pytest.raises(EtagConflict):
            await store.transact([Put(fresh, {"v": 1}), Put(taken, {"v": 2})])
        assert await store.get(fresh) is None
        kept = await store.get(taken)
        assert kept is not None
        assert kept.value == {"v": 1}


async def test_redis_does_not_roll_back_which_is_why_the_ledger_is_not_on_it(
    platform: Platform,
) -> None:
    if platform.stack.profile != "local":
        pytest.skip("Redis is the partner simulator's store only on the local profile")
    a, b = f"test-tx-a-{uuid.uuid4()}", f"test-tx-b-{uuid.uuid4()}"
    async with platform.async_sidecar("partner") as http:
        store = DaprStateStore(http, STATESTORE)
        await store.transact([Put(a, {"v": 1}), Put(b, {"v": 1})])
        va, vb = await store.get(a), await store.get(b)
        assert va is not None
        assert vb is not None
        await store.save(b, {"v": 2}, etag=vb.etag)
        with pytest.raises(EtagConflict):
            await store.transact([Put(a, {"v": 10}, etag=va.etag), Put(b, {"v": 10}, etag=vb.etag)])
        after_a = await store.get(a)
        assert after_a is not None
        # MULTI/EXEC has no rollback: the other operation applied anyway.
        assert after_a.value == {"v": 10}
