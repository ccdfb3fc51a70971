"""Just enough of Kafka's wire protocol to tell a broker that is serving from an open port."""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Callable

from kaya787_launcher.topology import LOOPBACK

# Only a Metadata v4 request: v0-v3 are gone since Kafka 4.0, and v4 is the oldest left and
# not yet "flexible" (plain int16-length strings, no tagged fields).
_METADATA_KEY = 3
_METADATA_VERSION = 4
_CLIENT_ID = b"kaya787-probe"


def metadata_request(correlation_id: int) -> bytes:
    header = struct.pack(">hhih", _METADATA_KEY, _METADATA_VERSION, correlation_id, len(_CLIENT_ID))
    # topics: an empty array (no topic, only the brokers); allow_auto_topic_creation: false.
    body = struct.pack(">ib", 0, 0)
    message = header + _CLIENT_ID + body
    return struct.pack(">i", len(message)) + message


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self._data, self._at)
        self._at += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        size = self.take(">h")
        if size < 0:
            return None
        text = self._data[self._at : self._at + size]
        if len(text) != size:
            raise struct.error("string runs past the end")
        self._at += size
        return text.decode()


def parse_metadata_brokers(payload: bytes, correlation_id: int) -> list[tuple[int, str, int]]:
    """The (node id, host, port) of every live broker in a Metadata v4 response payload."""
    reader = _Reader(payload)
    if reader.take(">i") != correlation_id:
        raise ValueError("the answer is not to our request")
    reader.take(">i")  # throttle_time_ms
    brokers = []
    for _ in range(reader.take(">i")):
        node = reader.take(">i")
        host = reader.string() or ""
        port = reader.take(">i")
        reader.string()  # rack
        brokers.append((node, host, port))
    return brokers


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed mid-answer")
        data += chunk
    return data


def kafka_ok(port: int, node_id: int) -> Callable[[], bool]:
    """Ready when the broker answers Metadata listing itself: it is registered and unfenced,
    which an open port alone does not say."""

    def probe() -> bool:
        correlation_id = secrets.randbelow(2**31)
        try:
            with socket.create_connection((LOOPBACK, port), timeout=2.0) as sock:
                sock.sendall(metadata_request(correlation_id))
                (size,) = struct.unpack(">i", _receive(sock, 4))
                if not 0 < size <= 1 << 20:
                    return False
                brokers = parse_metadata_brokers(_receive(sock, size), correlation_id)
        except (OSError, ValueError, struct.error):
            return False
        return any(node == node_id and bport == port for node, _, bport in brokers)

    return probe
