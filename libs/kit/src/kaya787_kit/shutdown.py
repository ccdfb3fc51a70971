"""Graceful shutdown, the same for every app: SIGTERM drains, then the process exits 0.

On the first SIGTERM (or SIGINT) an app
1. reports not ready at once (`/readyz` answers 503 problem+json) and answers every request
   with `Connection: close`, so its sidecar drops each kept-alive connection after the
   answer instead of racing the app's close of an idle one;
2. keeps accepting and serving for `SHUTDOWN_DRAIN_SECONDS` (Kubernetes may still route a
   request or two while the endpoint removal spreads; locally the sidecar retires its
   connections);
3. stops listening, closes idle connections and gives what is in flight - requests and the
   pub/sub deliveries being handled, which are requests too - up to
   `SHUTDOWN_GRACE_SECONDS` to finish (then cancels it), runs the lifespan's shutdown
   (background relays stopped, sidecar client closed) and exits with status 0.
A second signal ends the drain at once; a third skips the grace.

The listening socket is bound with SO_REUSEPORT, so a new process of the same app (same
user) can listen on the same port before the old one stops: that is how the launcher's
rolling restart replaces a process with no moment where nothing listens. Once listening,
each process attaches a classic BPF program to the port's reuseport group that sends every
new connection to the group's second socket, i.e. to the newcomer while two share the
port (with one socket the index is out of range and the kernel falls back to its hash).
So the old process gets no new connection after its successor listens, and no handshake
is left in its accept queue when it closes (the kernel resets those; tcp_migrate_req
would move them, but it is a host-wide sysctl and off by default).
"""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import struct
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_log = logging.getLogger("kaya787.shutdown")

# asm-generic/socket.h; Python's socket module does not name it.
SO_ATTACH_REUSEPORT_CBPF = 51
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: return the constant k
# The reuseport group's index the program chooses: the second socket, the newest of two.
NEWCOMER_INDEX = 1


class Drain:
    """Whether the app is shutting down, and until when it keeps accepting."""

    def __init__(self, drain_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.drain_seconds = drain_seconds
        self._clock = clock
        self._deadline: float | None = None

    @property
    def draining(self) -> bool:
        return self._deadline is not None

    def begin(self) -> None:
        """Start draining (idempotent: a second call keeps the first deadline)."""
        if self._deadline is None:
            self._deadline = self._clock() + self.drain_seconds

    def end_now(self) -> None:
        """Cut the drain window short (a second signal)."""
        self._deadline = self._clock()

    def over(self) -> bool:
        """True once the drain window has passed: time to stop listening."""
        return self._deadline is not None and self._clock() >= self._deadline


class DrainMiddleware:
    """While draining, every answer says `Connection: close`: the client (the sidecar)
    closes the connection after reading it, so no request is sent on a connection the app
    is about to close."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self._app = app
        self._drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self._drain.draining:
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self._app(scope, receive, send_closing)


class GracefulServer(uvicorn.Server):
    """uvicorn's server with the drain in front of its own graceful shutdown, and an exit
    status of 0 after a signal (uvicorn re-raises the signal it caught once it is done,
    which would end the process *by* SIGTERM)."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.drain.draining:
            self.drain.begin()
            _log.info(
                "shutting down: draining",
                extra={
                    "signal": signal.Signals(sig).name,
                    "drain_seconds": self.drain.drain_seconds,
                    "grace_seconds": self.config.timeout_graceful_shutdown,
                },
            )
        elif not self.should_exit:
            self.drain.end_now()
            self.should_exit = True
        else:
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.drain.over():
            self.should_exit = True
        return await super().on_tick(counter)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        for sock in sockets or []:
            steer_new_connections_to_newcomer(sock)
            host, port = sock.getsockname()[:2]
            _log.info("listening", extra={"address": f"{host}:{port}"})


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEPORT, not yet listening: uvicorn
    listens on it once the lifespan has started, so a process joins the port only ready."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICSERV
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def newcomer_program(index: int = NEWCOMER_INDEX) -> bytes:
    """The classic BPF program `return index`: one `struct sock_filter` {code, jt, jf, k}."""
    return struct.pack("HBBI", _BPF_RET_K, 0, 0, index)


def steer_new_connections_to_newcomer(sock: socket.socket) -> bool:
    """Attach `newcomer_program` to the listening socket's reuseport group; False (and a
    log line) where the kernel refuses, which only costs the steering, not the service."""
    program = ctypes.create_string_buffer(newcomer_program(), 8)
    fprog = struct.pack("HP", 1, ctypes.addressof(program))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        _log.warning("cannot steer new connections to a successor: %s", exc)
        return False
    return True
