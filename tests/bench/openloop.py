"""A light open-loop HTTP/1.1 load client, and per-process CPU and RSS from /proc.

Open loop: requests are sent at a fixed offered rate whatever the answers, and each one's
latency counts from the moment it was due (not from when a connection was free), so a
slow server shows as latency and backlog instead of a lower offered rate (no coordinated
omission). The client speaks HTTP/1.1 over asyncio streams with keep-alive connections:
no HTTP library on the hot path, so it costs a fraction of what the platform spends per
request (the report shows its CPU apart). Loopback only; every run is bounded in count
and time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kaya787_launcher.stack import Stack

LOOPBACK = "127.0.0.1"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    due: float  # when it was meant to be sent (loop time)
    latency: float  # seconds from `due` to the whole answer; inf when none came
    status: int  # 0: no answer (connection error or time-out)
    body: bytes
    index: int = -1  # which request of the run (the `i` given to `make`)


class ConnectionPool:
    """Keep-alive connections to one loopback port; one request at a time on each."""

    # A server closes a connection idle past its keep-alive timeout (NGINX: 75 s); a request
    # written into one that closes at that moment gets no answer. Older ones are not reused.
    MAX_IDLE_S = 30.0

    def __init__(self, port: int, limit: int) -> None:
        self._port = port
        # (reader, writer, when it went idle), oldest first: reuse takes the newest.
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._slots = asyncio.Semaphore(limit)

    def _reusable(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if now - since <= self.MAX_IDLE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def send(self, request: Request, limit_s: float) -> tuple[int, bytes]:
        status, _, body = await self.exchange(request, limit_s)
        return status, body

    async def exchange(self, request: Request, limit_s: float) -> tuple[int, dict[str, str], bytes]:
        """Status, header fields (lower-case names) and body of one request."""
        async with self._slots:
            reused = self._reusable()
            if reused is not None:
                reader, writer = reused
            else:
                reader, writer = await asyncio.open_connection(LOOPBACK, self._port)
            try:
                async with asyncio.timeout(limit_s):
                    status, fields, body = await _exchange(reader, writer, request)
            except BaseException:
                writer.close()
                raise
            if fields.get("connection", "").lower() != "close":
                self._idle.append((reader, writer, asyncio.get_running_loop().time()))
            else:
                writer.close()
            return status, fields, body

    def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request
) -> tuple[int, dict[str, str], bytes]:
    head = [f"{request.method} {request.path} HTTP/1.1", f"host: {LOOPBACK}"]
    head += [f"{k}: {v}" for k, v in request.headers.items()]
    head.append(f"content-length: {len(request.body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + request.body)
    await writer.drain()
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return status, fields, body


async def offer(
    pool: ConnectionPool,
    rate: float,
    seconds: float,
    make: Callable[[int], Request],
    *,
    limit_s: float = 30.0,
    on_answer: Callable[[Answer], None] | None = None,
) -> list[Answer]:
    """Send `rate` requests a second for `seconds`, each due at its slot; all answers.
    `on_answer` sees each answer as it arrives (a long run reports while it goes)."""
    loop = asyncio.get_running_loop()
    count = max(1, int(rate * seconds))
    start = loop.time() + 0.05
    answers: list[Answer] = []

    async def one(i: int, due: float) -> None:
        try:
            status, body = await pool.send(make(i), limit_s)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            answer = Answer(due, float("inf"), 0, b"", i)
        else:
            answer = Answer(due, loop.time() - due, status, body, i)
        answers.append(answer)
        if on_answer is not None:
            on_answer(answer)

    tasks = []
    for i in range(count):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return answers


@dataclass(frozen=True)
class Usage:
    cpu_s: float  # CPU seconds used so far (user + system)
    rss_bytes: int  # resident set size now


def _stat(pid: int) -> tuple[int, Usage] | None:
    """(parent pid, usage) of a process; None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, from field 3 (state) on: see proc(5).
    fields = raw[raw.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return int(fields[1]), Usage(cpu, int(fields[21]) * _PAGE)


def _all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def usage_by_root(roots: dict[str, int]) -> dict[str, Usage]:
    """CPU seconds so far and RSS now of each named process with all its descendants (NGINX's
    workers count to NGINX). A root that is gone counts zero."""
    stats = {pid: s for pid in _all_pids() if (s := _stat(pid)) is not None}
    owner: dict[int, str | None] = {pid: name for name, pid in roots.items()}
    cpu = dict.fromkeys(roots, 0.0)
    rss = dict.fromkeys(roots, 0)
    for pid, (_, usage) in stats.items():
        seen: list[int] = []
        walk = pid
        while walk not in owner and walk in stats and walk > 1 and len(seen) < 64:
            seen.append(walk)
            walk = stats[walk][0]
        name = owner.get(walk)
        for visited in seen:
            owner[visited] = name
        if name is not None:
            cpu[name] += usage.cpu_s
            rss[name] += usage.rss_bytes
    return {name: Usage(cpu[name], rss[name]) for name in roots}


def cpu_by_root(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process and all its descendants."""
    return {name: usage.cpu_s for name, usage in usage_by_root(roots).items()}


def platform_roots(stack: Stack) -> dict[str, int]:
    """Every running process of the platform by name: the roots `cpu_by_root` sums under."""
    return {str(r["name"]): int(str(r["pid"])) for r in stack.status() if r["pid"]}


def own_cpu() -> float:
    """CPU seconds of this (load client) process."""
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class MachineCpu:
    busy_s: float  # user, nice, system, irq, softirq: all cores, every namespace
    stolen_s: float  # taken by the hypervisor: time this machine did not get


def machine_cpu() -> MachineCpu:
    """CPU seconds so far of the whole machine (/proc/stat): what is neither the platform nor
    the load client is other load, and steal is a virtual machine's noisy neighbour."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return MachineCpu((user + nice + system + irq + softirq) / _TICKS, steal / _TICKS)


def own_usage() -> Usage:
    """CPU seconds and RSS of this (load client) process."""
    found = _stat(os.getpid())
    return found[1] if found is not None else Usage(own_cpu(), 0)
