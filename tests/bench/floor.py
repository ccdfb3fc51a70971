"""The architecture's floor: what the parts of a transfer cost alone, in CPU-ms.

A transfer crosses the edge and one sidecar-to-sidecar call, and writes the ledger and the
transaction record through the sidecars' state API. This measures each of those parts on
the running platform, open loop at a modest fixed rate (far below saturation), with the
CPU of every platform process from /proc:

- `app`          a request straight to an app (uvicorn + the kit's middleware), no sidecar;
- `edge + hop`   GET /.well-known/openid-configuration (a static answer) through NGINX,
                 the gateway's sidecar, identity's sidecar (mTLS) and identity - the path
                 of every public request;
- `invocation`   transactions' sidecar -> accounts' sidecar -> accounts, answered at once
                 (an id that names nothing: no store call) - the ledger call of a transfer;
- `state write`  one two-key state transaction through accounts' sidecar.

The floor of one transfer is then edge + hop + invocation + 4 state operations (the
transaction record and the ledger posting each read and write once), before any business
logic, the outbox relay or analytics; 2 cores give 2000 CPU-ms a second, so 2000 / floor
bounds the transfers a second this architecture can carry here. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import dataclass

from kaya787_launcher.gateway import GATEWAY_PORT
from kaya787_launcher.paths import Layout
from kaya787_launcher.stack import Stack

from tests.bench.openloop import (
    ConnectionPool,
    Request,
    cpu_by_root,
    offer,
    own_cpu,
    platform_roots,
)
from tests.bench.report import publish
from tests.support.platform import ROOT

CORES_MS_PER_S = 2000.0
STATE_OPS_PER_TRANSFER = 4


@dataclass
class Part:
    name: str
    rate: float
    answered: int
    errors: int
    p50_ms: float
    cpu_ms: dict[str, float]  # per request, by process
    client_cpu_ms: float

    @property
    def total(self) -> float:
        return sum(self.cpu_ms.values())


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def idle_cpu_per_s(stack: Stack, seconds: float) -> dict[str, float]:
    """What each process burns doing nothing (timers, heartbeats, scrapes): subtracted from
    every part, so a part counts only what its requests cost."""
    roots = platform_roots(stack)
    loop = asyncio.get_running_loop()
    before, start = cpu_by_root(roots), loop.time()
    await asyncio.sleep(seconds)
    after, spent = cpu_by_root(roots), loop.time() - start
    return {n: (after[n] - before[n]) / spent for n in roots}


async def _part(
    stack: Stack,
    idle: dict[str, float],
    name: str,
    port: int,
    make: Request,
    rate: float,
    seconds: float,
    ok: int,
) -> Part:
    roots = platform_roots(stack)
    loop = asyncio.get_running_loop()
    pool = ConnectionPool(port, limit=64)
    try:
        await offer(pool, rate, 1.0, lambda _: make)  # warm the connections and caches
        before, client_before, start = cpu_by_root(roots), own_cpu(), loop.time()
        answers = await offer(pool, rate, seconds, lambda _: make)
        after, client_after, spent = cpu_by_root(roots), own_cpu(), loop.time() - start
    finally:
        pool.close()
    count = max(1, len(answers))
    busy = {n: max(0.0, after[n] - before[n] - idle.get(n, 0.0) * spent) for n in roots}
    latencies = sorted(a.latency * 1000 for a in answers if a.status == ok)
    part = Part(
        name=name,
        rate=rate,
        answered=sum(1 for a in answers if a.status == ok),
        errors=sum(1 for a in answers if a.status != ok),
        p50_ms=latencies[len(latencies) // 2] if latencies else float("nan"),
        cpu_ms={n: busy[n] * 1000 / count for n in roots},
        client_cpu_ms=(client_after - client_before) * 1000 / count,
    )
    _log(
        f"  {name}: {part.answered} answered, {part.errors} errors, p50 {part.p50_ms:.1f} ms,"
        f" {part.total:.2f} CPU-ms per request"
    )
    return part


def _sidecar(stack: Stack, app_id: str, method: str, path: str, body: bytes = b"") -> Request:
    token = stack.tokens_for(app_id)["dapr_api_token"]
    headers = {"dapr-api-token": token, "content-type": "application/json"}
    return Request(method, path, headers, body)


async def measure(stack: Stack, rate: float, seconds: float) -> list[Part]:
    apps = stack.run_file
    idle = await idle_cpu_per_s(stack, seconds)
    accounts = apps.app("accounts")
    write = json.dumps(
        {
            "operations": [
                {"operation": "upsert", "request": {"key": f"bench-floor-{i}", "value": {"n": i}}}
                for i in range(2)
            ]
        }
    ).encode()
    assert accounts.app_port is not None
    nothing = f"not-an-id-{uuid.uuid4().hex[:6]}"
    parts = (  # name, port, request, the status it answers
        ("app", accounts.app_port, Request("GET", "/healthz", {}), 200),
        ("edge + hop", GATEWAY_PORT, Request("GET", "/.well-known/openid-configuration", {}), 200),
        (
            "invocation",
            apps.app("transactions").http_port,
            _sidecar(
                stack,
                "transactions",
                "GET",
                f"/v1.0/invoke/accounts/method/internal/accounts/{nothing}",
            ),
            404,
        ),
        (
            "state write",
            accounts.http_port,
            _sidecar(stack, "accounts", "POST", "/v1.0/state/statestore/transaction", write),
            204,
        ),
    )
    return [
        await _part(stack, idle, name, port, request, rate, seconds, ok)
        for name, port, request, ok in parts
    ]


def _table(parts: list[Part]) -> tuple[str, float]:
    names = sorted({n for p in parts for n, ms in p.cpu_ms.items() if ms >= 0.05})
    head = "| part | rate/s | ok | errors | p50 ms | CPU-ms/request | " + " | ".join(names)
    rows = [head + " |", "|" + "---|" * (6 + len(names))]
    for p in parts:
        cells = " | ".join(f"{p.cpu_ms.get(n, 0.0):.2f}" for n in names)
        rows.append(
            f"| {p.name} | {p.rate:.0f} | {p.answered} | {p.errors} | {p.p50_ms:.1f} | "
            f"{p.total:.2f} | {cells} |"
        )
    by = {p.name: p.total for p in parts}
    floor = by["edge + hop"] + by["invocation"] + STATE_OPS_PER_TRANSFER * by["state write"]
    rows += [
        "",
        f"Floor of one transfer: edge + hop ({by['edge + hop']:.2f}) + invocation"
        f" ({by['invocation']:.2f}) + {STATE_OPS_PER_TRANSFER} x state write"
        f" ({by['state write']:.2f}) = **{floor:.1f} CPU-ms**, before any business logic,"
        f" outbox relay or analytics. On 2 cores ({CORES_MS_PER_S:.0f} CPU-ms/s) that bounds"
        f" the platform at **{CORES_MS_PER_S / floor:.0f} transfers/s**; 250/s would need"
        f" {250 * floor / 1000:.1f} cores. A bare request to an app costs"
        f" {by['app']:.2f} CPU-ms. Idle CPU of every process (measured first, for as long"
        f" as a part) is subtracted. Load client: "
        + ", ".join(f"{p.name} {p.client_cpu_ms:.2f}" for p in parts)
        + " CPU-ms/request (not counted above).",
    ]
    return "\n".join(rows), floor


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench-floor", description=__doc__)
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s per part")
    parser.add_argument("--seconds", type=float, default=10.0, help="per part (max 60)")
    args = parser.parse_args()
    stack = Stack(Layout(ROOT), say=_log)
    if not stack.is_up():
        raise SystemExit("bench-floor measures a running platform: `make up` first")
    rate = max(1.0, min(args.rate, 500.0))
    seconds = max(1.0, min(args.seconds, 60.0))
    _log(f"==> each part at {rate:.0f}/s for {seconds:.0f} s (profile {stack.profile})")
    parts = asyncio.run(measure(stack, rate, seconds))
    table, floor = _table(parts)
    publish(f"bench-floor-{stack.profile}", "KAYA787 floor of a transfer", table)
    print(f"floor: {floor:.1f} CPU-ms per transfer")


if __name__ == "__main__":
    main()
