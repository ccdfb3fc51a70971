"""`make bench-transfers`: transfers offered open-loop through the gateway, rate by rate.

For each offered rate (default 50, 100, 200, 300, 400 a second, 30 s each) the load client
sends transfers with real tokens among enough accounts that none is hot, then one run where
a single account pays many (the hot account). Per rate: completions a second, errors by
status, accept p50/p99, accept -> final p50/p99 (a transfer is final in its answer), and
CPU-ms per transfer of every process of the platform (from /proc, children included), the
load client apart. One client address offers the whole load, so the run lifts the
gateway's per-client limit (KAYA787_GATEWAY_RATE) for its duration and says so. Writes
var/reports/bench-transfers-<time>.md and a PNG plot beside it. Loopback only, bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kaya787_launcher.gateway import GATEWAY_PORT
from kaya787_launcher.paths import Layout
from kaya787_launcher.stack import Stack

from tests.bench.edge_limit import LIFTED_RATE, lifted_edge_limit
from tests.bench.openloop import (
    Answer,
    ConnectionPool,
    Request,
    cpu_by_root,
    offer,
    own_cpu,
    platform_roots,
)
from tests.bench.payers import Payer, funded_payers, transfer_request
from tests.bench.report import publish
from tests.bench.soak_stats import percentile
from tests.support.platform import ROOT


@dataclass
class RateResult:
    label: str
    offered: float
    seconds: float
    completed: int
    failed: int  # answered 2xx with status failed (insufficient funds)
    errors: dict[int, int]
    accept_ms: list[float]
    wall: float
    cpu_ms: dict[str, float] = field(default_factory=dict)
    client_cpu_ms: float = 0.0

    @property
    def achieved(self) -> float:
        return self.completed / self.wall if self.wall > 0 else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.accept_ms, q)

    @property
    def cpu_per_transfer(self) -> float:
        return sum(self.cpu_ms.values())  # cpu_ms is already per transfer


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _summarise(label: str, rate: float, seconds: float, answers: list[Answer]) -> RateResult:
    completed = failed = 0
    errors: dict[int, int] = {}
    accept = []
    for answer in answers:
        if answer.status == 201:
            status = json.loads(answer.body).get("status")
            completed += status == "completed"
            failed += status == "failed"
            accept.append(answer.latency * 1000)
        else:
            errors[answer.status] = errors.get(answer.status, 0) + 1
    first = min(a.due for a in answers)
    last = max(a.due + a.latency for a in answers if a.latency != float("inf")) if accept else first
    return RateResult(label, rate, seconds, completed, failed, errors, accept, last - first)


async def _measure(
    stack: Stack,
    pool: ConnectionPool,
    label: str,
    rate: float,
    seconds: float,
    make: object,
) -> RateResult:
    roots = platform_roots(stack)
    before, client_before = cpu_by_root(roots), own_cpu()
    answers = await offer(pool, rate, seconds, make)  # type: ignore[arg-type]
    after, client_after = cpu_by_root(roots), own_cpu()
    result = _summarise(label, rate, seconds, answers)
    result.cpu_ms = {name: (after[name] - before[name]) * 1000 for name in roots}
    done = max(1, result.completed + result.failed)
    result.cpu_ms = {name: ms / done for name, ms in result.cpu_ms.items()}
    result.client_cpu_ms = (client_after - client_before) * 1000 / done
    _log(
        f"  {label}: offered {rate:.0f}/s -> {result.achieved:.1f}/s completed, "
        f"errors {result.errors or 0}, accept p50 {result.percentile(0.5):.1f} ms "
        f"p99 {result.percentile(0.99):.1f} ms, {result.cpu_per_transfer:.1f} CPU-ms/transfer"
    )
    return result


async def _run_rates(
    stack: Stack, payers: list[Payer], rates: list[float], seconds: float, hot_rate: float
) -> list[RateResult]:
    accounts = [(p, a) for p in payers for a in p.accounts]
    rng = random.Random(787)

    def spread(_: int) -> Request:
        (payer, source), (__, destination) = rng.sample(accounts, 2)
        return transfer_request(payer, source, destination)

    hot_payer, hot_source = payers[0], payers[0].accounts[0]
    others = [a for _, a in accounts if a != hot_source]

    def hot(_: int) -> Request:
        return transfer_request(hot_payer, hot_source, rng.choice(others))

    pool = ConnectionPool(GATEWAY_PORT, limit=512)
    results = []
    try:
        for rate in rates:
            results.append(await _measure(stack, pool, "spread", rate, seconds, spread))
            await asyncio.sleep(2.0)  # let the relay and analytics drain between rates
        results.append(await _measure(stack, pool, "hot account", hot_rate, seconds, hot))
    finally:
        pool.close()
    return results


def _table(results: list[RateResult]) -> str:
    lines = [
        "| run | offered/s | completed/s | failed (funds) | errors by status | accept p50 ms "
        "| accept p99 ms | accept→final p50 / p99 ms | CPU-ms/transfer (platform) | load client "
        "CPU-ms |",
        "|---|---:|---:|---:|---|---:|---:|---|---:|---:|",
    ]
    for r in results:
        errors = ", ".join(f"{k or 'none'}: {v}" for k, v in sorted(r.errors.items())) or "0"
        lines.append(
            f"| {r.label} | {r.offered:.0f} | {r.achieved:.1f} | {r.failed} | {errors} "
            f"| {r.percentile(0.5):.1f} | {r.percentile(0.99):.1f} "
            f"| {r.percentile(0.5):.1f} / {r.percentile(0.99):.1f} "
            f"| {r.cpu_per_transfer:.1f} | {r.client_cpu_ms:.2f} |"
        )
    names = sorted(results[0].cpu_ms, key=lambda n: -max(r.cpu_ms.get(n, 0) for r in results))
    lines += ["", "CPU-ms per transfer by process:", ""]
    lines.append(
        "| process | " + " | ".join(f"{r.label} {r.offered:.0f}/s" for r in results) + " |"
    )
    lines.append("|---|" + "---:|" * len(results))
    for name in names:
        if max(r.cpu_ms.get(name, 0) for r in results) < 0.05:
            continue
        cells = " | ".join(f"{r.cpu_ms.get(name, 0):.2f}" for r in results)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def _plot(results: list[RateResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spread = [r for r in results if r.label == "spread"]
    figure, left = plt.subplots(figsize=(8, 4.5))
    offered = [r.offered for r in spread]
    left.plot(offered, offered, linestyle=":", color="grey", label="offered")
    left.plot(offered, [r.achieved for r in spread], marker="o", label="completed/s")
    left.set_xlabel("offered transfers/s")
    left.set_ylabel("transfers/s")
    right = left.twinx()
    right.plot(
        offered,
        [r.percentile(0.99) for r in spread],
        marker="s",
        color="tab:red",
        label="accept p99 ms",
    )
    right.set_ylabel("p99 ms")
    right.set_yscale("log")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="upper left")
    left.set_title("KAYA787 transfers, open loop through the gateway")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench-transfers", description=__doc__)
    parser.add_argument("--rates", default="50,100,200,300,400", help="offered rates, per s")
    parser.add_argument("--seconds", type=float, default=30.0, help="per rate (max 120)")
    parser.add_argument("--hot-rate", type=float, default=100.0, help="the hot-account run")
    parser.add_argument("--users", type=int, default=40, help="payers (2 accounts each)")
    args = parser.parse_args()
    rates = [max(1.0, min(float(r), 2000.0)) for r in args.rates.split(",")]
    seconds = max(1.0, min(args.seconds, 120.0))
    stack = Stack(Layout(ROOT), say=_log)
    with lifted_edge_limit(stack) as platform:
        _log(f"==> {args.users} payers, 2 funded accounts each")
        payers = asyncio.run(funded_payers(platform, max(2, args.users), 2, 5_000_000))
        _log(f"==> offering {rates} transfers/s, {seconds:.0f} s each, then a hot account")
        results = asyncio.run(_run_rates(stack, payers, rates, seconds, args.hot_rate))
    profile = stack.profile
    table = (
        f"Profile `{profile}`; trace sampling "
        f"{os.environ.get('KAYA787_TRACE_SAMPLING', 'default')}; "
        f"gateway per-client limit lifted to {LIFTED_RATE}/s for the run (one client address "
        f"offers all the load). Every transfer moves 1 cent between two of {2 * len(payers)} "
        f"accounts (the hot run: from one account to all the others).\n\n" + _table(results)
    )
    report = publish(f"bench-transfers-{profile}", "KAYA787 transfer benchmark", table)
    plot = report.with_suffix(".png")
    _plot(results, plot)
    print(f"plot: {plot}")
    best = max(
        (r for r in results if r.label == "spread" and not r.errors),
        default=None,
        key=lambda r: r.achieved,
    )
    if best is not None:
        print(
            f"highest error-free rate: {best.achieved:.1f} transfers/s "
            f"(p99 {best.percentile(0.99):.1f} ms)"
        )
    print(
        f"median CPU-ms per transfer: {statistics.median(r.cpu_per_transfer for r in results):.1f}"
    )


if __name__ == "__main__":
    main()
