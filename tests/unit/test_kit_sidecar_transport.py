"""The lean sidecar transport against a real HTTP/1.1 server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from kaya787_kit.sidecar_transport import SidecarTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return head.split("\r\n")[0], await reader.readexactly(length)


async def _echo_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line, body = await _read_request(reader)
        answer = f"{line}|{body.decode()}".encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
        await writer.drain()


async def test_requests_share_one_kept_alive_connection() -> None:
    async with (
        _server(_echo_forever) as (base, connections),
        httpx.AsyncClient(base_url=base, transport=SidecarTransport()) as client,
    ):
        first = await client.post("/v1.0/state/s", content=b'{"a":1}')
        second = await client.get("/v1.0/state/s/k%2Fx", params={"consistency": "strong"})
    assert first.text == 'POST /v1.0/state/s HTTP/1.1|{"a":1}'
    assert second.text == "GET /v1.0/state/s/k%2Fx?consistency=strong HTTP/1.1|"
    assert len(connections) == 1


async def test_a_chunked_answer_is_handed_over_whole() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
            b"\r\n4\r\n[1,2\r\n2\r\n,3\r\n1\r\n]\r\n0\r\n\r\n"
        )
        await writer.drain()

    async with (
        _server(chunked) as (base, _),
        httpx.AsyncClient(base_url=base, transport=SidecarTransport()) as client,
    ):
        assert (await client.get("/x")).json() == [1, 2, 3]


async def test_a_connection_the_peer_closed_while_idle_is_replaced_once() -> None:
    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # Closes without Connection: close, as an idle timeout does.

    async with (
        _server(one_answer_then_close) as (base, connections),
        httpx.AsyncClient(base_url=base, transport=SidecarTransport()) as client,
    ):
        assert (await client.get("/a")).text == "ok"
        await asyncio.sleep(0.05)
        assert (await client.post("/b", content=b"x")).text == "ok"
    assert len(connections) == 2


async def test_failures_are_the_errors_httpx_raises() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    async with (
        _server(silent) as (base, _),
        httpx.AsyncClient(base_url=base, transport=SidecarTransport(), timeout=0.2) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with httpx.AsyncClient(transport=SidecarTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
