"""A lean httpx transport for the one peer an app talks to: its own sidecar, on loopback.

httpx's default transport (httpcore + anyio + h11, all pure Python) was most of an app's
CPU under load (py-spy: 57 % of transactions' samples), and it sends a request's head and
body in two socket writes, each waking the sidecar. This transport keeps the httpx API
(so ports, tests and tracing stay as they are) and replaces the wire part: kept-alive
asyncio connections, one write per request, a small HTTP/1.1 response parser. It speaks
only to a plain-HTTP loopback sidecar; it fails as httpx does (ConnectError, ReadTimeout,
PoolTimeout, RemoteProtocolError), so callers handle it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx

_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Stale(Exception):
    """The peer closed the connection before sending a single byte of an answer."""


class SidecarTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 256, max_idle: int = 128) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._max_idle = max_idle

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        host = request.url.host
        port = request.url.port or 80
        body = await request.aread()
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no free connection to the sidecar", request=request) from exc
        try:
            return await self._exchange(request, host, port, body, timeouts)
        finally:
            self._slots.release()

    async def _exchange(
        self,
        request: httpx.Request,
        host: str,
        port: int,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        data = _head(request, len(body)) + body
        for attempt in (1, 2):
            reused, (reader, writer) = await self._connection(
                host, port, timeouts.get("connect"), request
            )
            try:
                writer.write(data)
                async with asyncio.timeout(timeouts.get("read")):
                    status, headers, content, keep = await _read_response(reader)
            except TimeoutError as exc:
                writer.close()
                raise httpx.ReadTimeout(
                    "the sidecar did not answer in time", request=request
                ) from exc
            except _Stale as exc:
                writer.close()
                # The sidecar closed a kept-alive connection while it sat idle, before it
                # read our request: say it again once, on a new connection.
                if reused and attempt == 1:
                    continue
                raise httpx.RemoteProtocolError(
                    "the sidecar closed the connection without answering", request=request
                ) from exc
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                raise httpx.RemoteProtocolError(
                    f"connection to the sidecar broke: {type(exc).__name__}", request=request
                ) from exc
            except BaseException:
                # Cancelled mid-answer: the connection's state is unknown, never reuse it.
                writer.close()
                raise
            idle = self._idle.setdefault((host, port), [])
            if keep and len(idle) < self._max_idle:
                idle.append((reader, writer))
            else:
                writer.close()
            return httpx.Response(status, headers=headers, content=content, request=request)
        raise AssertionError("unreachable")

    async def _connection(
        self, host: str, port: int, connect_within: float | None, request: httpx.Request
    ) -> tuple[bool, _Connection]:
        """(reused, connection): a kept-alive one when there is one, else a new one."""
        idle = self._idle.get((host, port), [])
        while idle:
            reader, writer = idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return True, (reader, writer)
            writer.close()
        try:
            async with asyncio.timeout(connect_within):
                return False, await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            raise httpx.ConnectError(f"cannot reach the sidecar: {exc}", request=request) from exc

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for _, writer in idle:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        self._idle.clear()


def _head(request: httpx.Request, length: int) -> bytes:
    target = request.url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} HTTP/1.1"]
    for name, value in request.headers.raw:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding", b"connection"):
            continue
        lines.append(f"{name.decode('latin-1')}: {value.decode('latin-1')}")
    if length or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_response(
    reader: asyncio.StreamReader,
) -> tuple[int, list[tuple[str, str]], bytes, bool]:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _Stale from exc
        raise
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise _Stale from exc
    lines = raw[:-4].decode("latin-1").split("\r\n")
    version, status_text = lines[0].split(" ", 1)
    status = int(status_text.split(" ", 1)[0])
    headers: list[tuple[str, str]] = []
    length: int | None = None
    chunked = False
    keep = version == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        lowered = name.lower()
        if lowered == "content-length":
            length = int(value)
        elif lowered == "transfer-encoding":
            chunked = "chunked" in value.lower()
            continue  # the body is handed over whole
        elif lowered == "connection":
            keep = value.lower() != "close"
        headers.append((name, value))
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        content = b"".join(parts)
        headers.append(("Content-Length", str(len(content))))
    elif length is not None:
        content = await reader.readexactly(length)
    elif status in (204, 304) or 100 <= status < 200:
        content = b""
    else:
        content = await reader.read()  # until the peer closes
        keep = False
    return status, headers, content, keep
