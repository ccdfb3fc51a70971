"""Readiness probes: ports free before start, services answering after."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def http_ok(url: str, headers: dict[str, str] | None = None) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            response = httpx.get(url, headers=headers, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.is_success

    return probe


def redis_ok(port: int, password: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
                auth = f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n"
                sock.sendall(auth.encode())
                reply = b""
                while b"PONG" not in reply and len(reply) < 256:
                    chunk = sock.recv(256)
                    if not chunk:
                        break
                    reply += chunk
                return b"+PONG" in reply
        except OSError:
            return False

    return probe


def wait_until(probe: Callable[[], bool], timeout: float, alive: Callable[[], bool]) -> bool:
    """Poll `probe` until it passes, the process dies, or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        if not alive():
            return False
        time.sleep(0.2)
    return probe()
