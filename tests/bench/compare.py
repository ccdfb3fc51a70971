"""`make bench-compare`: the same measurement on two platform set-ups, in one run.

- events: publish -> processed latency (p50/p99) and events/s, Redis Streams vs Kafka
  (profile local vs kafka), publishing user-registered CloudEvents from identity's
  sidecar and watching analytics count them.
- tracing: transfer throughput with trace sampling 1 vs 0 (KAYA787_TRACE_SAMPLING).

Each set-up gets a freshly started platform (a running one is stopped first); everything is
bounded in count and time and stays on 127.0.0.1. Ratios within one run are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from kaya787_kit.components import PUBSUB
from kaya787_launcher.paths import Layout
from kaya787_launcher.stack import TRACE_SAMPLING_ENV, Stack

from tests.bench.report import publish
from tests.support.ledger import Ledger, customer
from tests.support.platform import ROOT, Platform

TOPIC = "identity.user-registered.v1"
OVERVIEW = "/api/v1/analytics/overview"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _platform(profile: str, sampling: str | None = None) -> Iterator[Platform]:
    """A fresh platform for one set-up, stopped after it."""
    previous = os.environ.get(TRACE_SAMPLING_ENV)
    if sampling is None:
        os.environ.pop(TRACE_SAMPLING_ENV, None)
    else:
        os.environ[TRACE_SAMPLING_ENV] = sampling
    stack = Stack(Layout(ROOT), profile=profile, say=_say)
    stack.down(quiet=True)
    stack.up(timeout=180.0)
    try:
        yield Platform(stack, started_here=True)
    finally:
        stack.down(quiet=True)
        if previous is None:
            os.environ.pop(TRACE_SAMPLING_ENV, None)
        else:
            os.environ[TRACE_SAMPLING_ENV] = previous


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


@dataclass(frozen=True)
class EventFigures:
    profile: str
    latency_p50_ms: float
    latency_p99_ms: float
    sequential: int
    events_per_second: float
    burst: int


def _registered(platform: Platform, bearer: dict[str, str]) -> Callable[[], int]:
    client = platform.sidecar("gateway")

    def count() -> int:
        response = client.get(f"/v1.0/invoke/analytics/method{OVERVIEW}", headers=bearer)
        if response.status_code != 200:
            raise SystemExit(f"bench: overview answered {response.status_code}: {response.text}")
        value: int = response.json()["users_registered"]
        return value

    return count


def _envelope() -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "identity",
            "type": TOPIC,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": {"user_id": f"bench-{uuid.uuid4().hex}"},
        }
    )


def _wait_for(count: Callable[[], int], target: int, within: float) -> None:
    deadline = time.monotonic() + within
    while count() < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: analytics did not reach {target} within {within:.0f}s")
        time.sleep(0.005)


def measure_events(profile: str, sequential: int, burst: int) -> EventFigures:
    with _platform(profile) as platform:
        platform.register_and_login()
        count = _registered(platform, platform.analyst())
        _wait_for(count, 1, 60)  # the registration itself went through the broker
        time.sleep(2.0)  # let the consumer groups settle (Kafka's first rebalance)
        headers = {"content-type": "application/cloudevents+json"}
        url = f"/v1.0/publish/{PUBSUB}/{TOPIC}"
        samples: list[float] = []
        with platform.sidecar("identity") as identity:
            for _ in range(sequential):
                before = count()
                started = time.perf_counter()
                published = identity.post(url, content=_envelope(), headers=headers)
                if published.status_code != 204:
                    raise SystemExit(f"bench: publish answered {published.status_code}")
                _wait_for(count, before + 1, 30)
                samples.append(time.perf_counter() - started)

        async def flood() -> float:
            before = count()
            async with platform.async_sidecar("identity", timeout=30.0) as client:
                gate = asyncio.Semaphore(20)

                async def one() -> None:
                    async with gate:
                        response = await client.post(url, content=_envelope(), headers=headers)
                        if response.status_code != 204:
                            raise SystemExit(f"bench: publish answered {response.status_code}")

                started = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(burst)))
            await asyncio.to_thread(_wait_for, count, before + burst, 180)
            return time.perf_counter() - started

        elapsed = asyncio.run(flood())
        p50, p99 = _ms(samples)
        return EventFigures(profile, p50, p99, sequential, burst / elapsed, burst)


def measure_transfers(sampling: str, transfers: int, in_flight: int) -> float:
    """Completed transfers per second with `in_flight` transfers at a time."""
    with _platform("local", sampling=sampling) as platform:
        who = customer(platform, ("USD", "USD"))

        async def run() -> float:
            async with Ledger(platform) as ledger:
                await ledger.deposit(who, who.accounts[0], 10_000_000)
                gate = asyncio.Semaphore(in_flight)

                async def one() -> None:
                    async with gate:
                        outcome = await ledger.transfer(who, who.accounts[0], who.accounts[1], 1)
                        if outcome["status"] != "completed":
                            raise SystemExit(f"bench: transfer ended {outcome['status']}")

                started = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(transfers)))
                return transfers / (time.perf_counter() - started)

        return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench-compare", description=__doc__)
    parser.add_argument("what", choices=("events", "tracing", "all"), nargs="?", default="all")
    parser.add_argument("--events", type=int, default=60, help="sequential events per profile")
    parser.add_argument("--burst", type=int, default=400, help="events in the throughput burst")
    parser.add_argument("--transfers", type=int, default=60, help="transfers per sampling")
    parser.add_argument("--in-flight", type=int, default=10, help="concurrent transfers")
    args = parser.parse_args()
    sequential = max(10, min(args.events, 1000))
    burst = max(50, min(args.burst, 5000))
    transfers = max(10, min(args.transfers, 1000))
    lines: list[str] = []
    if args.what in ("events", "all"):
        figures = [measure_events(p, sequential, burst) for p in ("local", "kafka")]
        lines += [
            "| broker (profile) | publish->processed p50 ms | p99 ms | n | events/s | burst |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        names = {"local": "Redis Streams (local)", "kafka": "Kafka (kafka)"}
        lines += [
            f"| {names[f.profile]} | {f.latency_p50_ms:.1f} | {f.latency_p99_ms:.1f}"
            f" | {f.sequential} | {f.events_per_second:.0f} | {f.burst} |"
            for f in figures
        ]
        lines.append("")
    if args.what in ("tracing", "all"):
        off = measure_transfers("0", transfers, args.in_flight)
        on = measure_transfers("1", transfers, args.in_flight)
        lines += [
            "| transfers (profile local) | transfers/s | n | in flight |",
            "|---|---:|---:|---:|",
            f"| tracing off (sampling 0) | {off:.2f} | {transfers} | {args.in_flight} |",
            f"| tracing on (sampling 1) | {on:.2f} | {transfers} | {args.in_flight} |",
            "",
            f"throughput ratio on/off: {on / off:.3f}",
        ]
    table = "\n".join(lines)
    publish("bench-compare", "KAYA787 comparison", table)


if __name__ == "__main__":
    main()
