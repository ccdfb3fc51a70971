"""The revocation feed (events, reloads, fail closed when stale) and load shedding."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
import pytest
from fastapi import FastAPI
from kaya787_kit.cloudevents import CloudEvent, Delivery
from kaya787_kit.load_shedding import InFlightLimitMiddleware
from kaya787_kit.problems import Problem, install_problem_handlers
from kaya787_kit.revocations import RevocationFeed


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Source:
    def __init__(self) -> None:
        self.listed: dict[str, int] = {}
        self.down = False

    async def revoked(self) -> Mapping[str, int]:
        if self.down:
            raise httpx.ConnectError("identity is away")
        return dict(self.listed)


def _feed() -> tuple[RevocationFeed, Source, Clock]:
    source, clock = Source(), Clock()
    return RevocationFeed(source, max_staleness_seconds=60, clock=clock), source, clock


async def test_nothing_is_trusted_before_the_first_load() -> None:
    feed, _, _ = _feed()
    with pytest.raises(Problem) as unknown:
        await feed.is_revoked("t1")
    assert (unknown.value.status, unknown.value.code) == (503, "revocation_unavailable")


async def test_a_loaded_revocation_is_refused_and_others_pass() -> None:
    feed, source, _ = _feed()
    source.listed = {"t1": 2_000}
    await feed.sync()
    assert await feed.is_revoked("t1")
    assert not await feed.is_revoked("t2")


async def test_an_event_revokes_at_once_and_a_reload_does_not_forget_it() -> None:
    feed, _, _ = _feed()
    await feed.sync()
    event = CloudEvent(id="e1", data={"token_id": "t9", "expires_at": 1_500})
    assert await feed.on_event(event) is Delivery.SUCCESS
    assert await feed.is_revoked("t9")
    await feed.sync()  # the list read before the event arrived lacks it
    assert await feed.is_revoked("t9")
    bad = CloudEvent(id="e2", data={"token_id": ""})
    assert await feed.on_event(bad) is Delivery.DROP


async def test_expired_entries_are_dropped() -> None:
    feed, source, clock = _feed()
    source.listed = {"old": 1_010}
    await feed.sync()
    clock.now = 1_020
    await feed.sync()
    assert not await feed.is_revoked("old")


async def test_a_stale_list_refuses_every_token_until_it_loads_again() -> None:
    feed, source, clock = _feed()
    await feed.sync()
    source.down = True
    clock.now += 61
    with pytest.raises(httpx.ConnectError):
        await feed.sync()
    with pytest.raises(Problem) as stale:
        await feed.is_revoked("anything")
    assert stale.value.status == 503
    source.down = False
    await feed.sync()
    assert not await feed.is_revoked("anything")


def _slow_app(limit: int, gate: asyncio.Event) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(InFlightLimitMiddleware, max_in_flight=limit)

    @app.get("/work")
    async def work() -> dict[str, str]:
        await gate.wait()
        return {"done": "yes"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def test_requests_past_the_bound_are_shed_with_503_and_retry_after() -> None:
    gate = asyncio.Event()
    app = _slow_app(limit=2, gate=gate)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        held = [asyncio.create_task(client.get("/work")) for _ in range(2)]
        await asyncio.sleep(0.05)
        shed = await client.get("/work")
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        assert shed.headers["content-type"] == "application/problem+json"
        assert shed.json()["code"] == "overloaded"
        assert (await client.get("/healthz")).status_code == 200  # probes never shed
        gate.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await client.get("/work")).status_code == 200


async def test_a_sidecar_pool_time_out_is_a_503_problem_not_a_500() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/busy")
    async def busy() -> None:
        raise httpx.PoolTimeout("every connection to the sidecar is busy")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.get("/busy")
    assert answer.status_code == 503
    assert answer.json()["code"] == "upstream_unavailable"
    assert answer.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("raised", "status"),
    [
        (httpx.RemoteProtocolError("the sidecar closed the connection"), 503),
        (
            httpx.HTTPStatusError(
                "accounts failed",
                request=httpx.Request("GET", "http://sidecar/x"),
                response=httpx.Response(500),
            ),
            503,
        ),
        (
            httpx.HTTPStatusError(
                "we sent nonsense",
                request=httpx.Request("GET", "http://sidecar/x"),
                response=httpx.Response(400),
            ),
            500,
        ),
    ],
)
async def test_a_failing_peer_is_a_503_and_our_own_mistake_a_500(
    raised: Exception, status: int
) -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/call")
    async def call() -> None:
        raise raised

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        answer = await client.get("/call")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in answer.text
