"""Graceful shutdown (kaya787_kit.shutdown): the drain's clock, `Connection: close` while
draining, /readyz saying 503 at once, the server's signal handling (exit status 0), and the
reuseport steering that hands new connections to a successor."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kaya787_kit.service_app import create_service_app
from kaya787_kit.settings import ServiceSettings
from kaya787_kit.shutdown import (
    NEWCOMER_INDEX,
    Drain,
    DrainMiddleware,
    GracefulServer,
    newcomer_program,
    reuseport_socket,
    steer_new_connections_to_newcomer,
)
from kaya787_kit.sidecar import Sidecar
from kaya787_kit.tracing import Tracing
from pydantic import ValidationError

APP_TOKEN = "a" * 40
SETTINGS = ServiceSettings(
    app_id="demo", app_port=8000, dapr_api_token="d" * 40, app_api_token=APP_TOKEN
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ReadySidecar(Sidecar):
    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def is_ready(self) -> tuple[bool, str]:
        return True, "ok"


# ---------------------------------------------------------------------------- the drain
def test_the_drain_window_starts_at_the_first_signal_and_ends_after_its_length() -> None:
    clock = Clock()
    drain = Drain(2.0, clock)
    assert not drain.draining
    assert not drain.over()
    drain.begin()
    assert drain.draining
    assert not drain.over()
    clock.now += 1.0
    drain.begin()  # a repeated begin keeps the first deadline
    clock.now += 0.99
    assert not drain.over()
    clock.now += 0.01
    assert drain.over()


def test_ending_the_drain_now_is_over_at_once() -> None:
    clock = Clock()
    drain = Drain(30.0, clock)
    drain.begin()
    drain.end_now()
    assert drain.over()


def test_a_zero_drain_stops_listening_at_the_first_tick() -> None:
    drain = Drain(0.0, Clock())
    drain.begin()
    assert drain.over()


# ------------------------------------------------------------ connection: close, /readyz
def _plain_app(drain: Drain) -> FastAPI:
    app = FastAPI()

    @app.get("/thing")
    async def thing() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(DrainMiddleware, drain=drain)
    return app


def test_answers_keep_the_connection_until_the_drain_and_close_it_during() -> None:
    drain = Drain(5.0)
    with TestClient(_plain_app(drain)) as client:
        assert "connection" not in client.get("/thing").headers
        drain.begin()
        answer = client.get("/thing", headers={"connection": "keep-alive"})
    assert answer.status_code == 200
    assert answer.headers["connection"] == "close"
    assert answer.headers.get_list("connection") == ["close"]


@pytest.fixture
def service_app() -> Iterator[tuple[TestClient, Drain]]:
    tracing = Tracing("demo", environ={"OTEL_SDK_DISABLED": "true"})
    app = create_service_app(
        SETTINGS, title="demo", sidecar=ReadySidecar(SETTINGS, tracing), tracing=tracing
    )
    with TestClient(app) as client:
        yield client, app.state.drain


def test_readyz_says_503_from_the_moment_the_drain_starts_and_healthz_stays_200(
    service_app: tuple[TestClient, Drain],
) -> None:
    client, drain = service_app
    assert client.get("/readyz").status_code == 200
    drain.begin()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["code"] == "not_ready"
    assert ready.headers["connection"] == "close"
    # Liveness: the sidecar's app health check and the kubelet must not see it dead.
    alive = client.get("/healthz")
    assert alive.status_code == 200
    assert alive.headers["connection"] == "close"


def test_a_refused_call_closes_its_connection_too_while_draining(
    service_app: tuple[TestClient, Drain],
) -> None:
    client, drain = service_app
    drain.begin()
    refused = client.get("/anything")  # no app token
    assert refused.status_code == 401
    assert refused.headers["connection"] == "close"


def test_the_drain_and_grace_are_settings_with_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SETTINGS.shutdown_drain_seconds == 2.0
    assert SETTINGS.shutdown_grace_seconds == 10.0
    monkeypatch.setenv("SHUTDOWN_DRAIN_SECONDS", "0")
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "25")
    read = ServiceSettings(
        app_id="demo", app_port=8000, dapr_api_token="d" * 40, app_api_token=APP_TOKEN
    )
    assert (read.shutdown_drain_seconds, read.shutdown_grace_seconds) == (0.0, 25.0)
    for name, value in (("SHUTDOWN_DRAIN_SECONDS", "-1"), ("SHUTDOWN_GRACE_SECONDS", "0")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError):
            ServiceSettings(
                app_id="demo", app_port=8000, dapr_api_token="d" * 40, app_api_token=APP_TOKEN
            )
        monkeypatch.delenv(name)


# ------------------------------------------------------------------------- the server
def _server(drain: Drain) -> GracefulServer:
    return GracefulServer(uvicorn.Config(FastAPI(), timeout_graceful_shutdown=10), drain)


async def test_the_first_signal_drains_instead_of_stopping() -> None:
    clock = Clock()
    server = _server(Drain(2.0, clock))
    server.handle_exit(signal.SIGTERM, None)
    assert server.drain.draining
    assert not server.should_exit
    assert await server.on_tick(1) is False
    clock.now += 2.0
    assert await server.on_tick(2) is True
    assert server.should_exit
    assert not server.force_exit
    # Nothing recorded to re-raise: the process ends with status 0, not killed by SIGTERM.
    assert server._captured_signals == []


async def test_a_second_signal_ends_the_drain_and_a_third_the_grace() -> None:
    server = _server(Drain(60.0, Clock()))
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)
    assert server.should_exit
    assert not server.force_exit
    assert await server.on_tick(1) is True
    server.handle_exit(signal.SIGINT, None)
    assert server.force_exit
    assert server._captured_signals == []


# ---------------------------------------------------------------- reuseport and steering
def test_the_steering_program_returns_the_newcomers_index() -> None:
    # struct sock_filter {u16 code = BPF_RET|BPF_K; u8 jt; u8 jf; u32 k}
    assert newcomer_program() == bytes([0x06, 0, 0, 0, NEWCOMER_INDEX, 0, 0, 0])


def _accepts(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_two_processes_share_a_port_and_new_connections_go_to_the_newcomer() -> None:
    """What a rolling restart relies on, with the kernel's real reuseport group: the second
    listener gets every new connection once the program is attached; alone, a listener
    gets them all (the program's index is out of range, the kernel falls back)."""
    old = reuseport_socket("127.0.0.1", 0)
    port = old.getsockname()[1]
    old.listen(64)
    new = reuseport_socket("127.0.0.1", port)  # would raise EADDRINUSE without reuseport
    try:
        assert steer_new_connections_to_newcomer(old)  # the old one had attached it alone
        new.listen(64)
        assert steer_new_connections_to_newcomer(new)
        for sock in (old, new):
            sock.setblocking(False)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        assert (_accepts(old), _accepts(new)) == (0, 20)
        for client in clients:
            client.close()
        old.close()  # the old one leaves: the newcomer alone gets everything
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        assert _accepts(new) == 5
        for client in clients:
            client.close()
    finally:
        old.close()
        new.close()


def test_a_port_held_without_reuseport_is_refused() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        with pytest.raises(OSError, match="in use"):
            reuseport_socket("127.0.0.1", other.getsockname()[1]).close()
