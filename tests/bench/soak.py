"""`make soak`: transfers through the gateway at a fixed rate for a long while, to see what
time does to the platform - latency that creeps, memory that grows, errors that appear.

Open loop (tests/bench/openloop.py): transfers are offered at `--rate` a second whatever the
answers, by default half the capacity measured on this 2-core machine (docs/testing.md:
49.7/s on `local`, 40.0/s on `kafka`), for `--minutes` (30), among `--users` payers with two
funded accounts each, each transfer 1-99 cents from one of a payer's accounts to any other
account of the run, after `--warmup` minutes (10) of the same load: every error and every
transfer of the warm-up counts like the rest, but the bounds' reference is taken after it,
once the stores' bounded windows (Redis Streams' `maxLenApprox`, Jaeger's `max_traces`) have
filled (tests/bench/soak_stats.py). Every 30 s window: accept p50/p99 (of the transfers
answered 201), accept -> final p99 (a transfer is final in its 201 answer; an error or a
pending one counts as infinitely slow: more than 1 % of those make the p99 `inf`), errors by
status (no answer and a 201 without the transfer in its body count too); after the run each
transfer not final is sent again under its Idempotency-Key until it is (for at most 15
minutes), for the finality and money checks. Every 5 s: RSS and CPU of every process of the
platform (its children included), of the load client (shown apart) and of the whole machine
(other sessions' load, the hypervisor's steal).

Bounds, checked at the end and printed as PASS/FAIL (exit status 1 on any FAIL): accept and
accept -> final p99 over the last minute within 20 % of the first five minutes' after the
warm-up (a run shorter than 30 minutes compares its first sixth; shorter than 6, its last
sixth); every process's RSS grows < 10 % from its median over the minute before those five
minutes end to its median over the last minute (why there: tests/bench/soak_stats.py); no
process restarted; 0 errors; every transfer final; money conserved (the run's accounts sum
to what they held before, no double or stray posting: tests/support/ledger.money_problems).

On a platform already up it lifts the gateway's per-client limit for the run and restores
it; otherwise it starts the profile (`--profile`, with KAYA787_TRACE_SAMPLING=0.1 unless set,
the sampling the capacity was measured with) and stops it after. Writes a markdown report
and two PNG plots (latency, RSS) to var/reports/. Loopback only; bounded; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import sys
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
from kaya787_launcher.gateway import GATEWAY_PORT
from kaya787_launcher.paths import Layout
from kaya787_launcher.stack import TRACE_SAMPLING_ENV, Stack

from tests.bench.edge_limit import lifted_edge_limit
from tests.bench.openloop import (
    Answer,
    ConnectionPool,
    MachineCpu,
    Request,
    Usage,
    machine_cpu,
    offer,
    own_usage,
    platform_roots,
    usage_by_root,
)
from tests.bench.payers import Payer, funded_payers, keep_tokens_fresh, refresh, transfer_request
from tests.bench.report import publish
from tests.bench.soak_plots import plot_latency, plot_rss
from tests.bench.soak_stats import (
    UNREADABLE,
    WINDOW_S,
    Check,
    Outcome,
    Sample,
    Spans,
    error_check,
    errors_text,
    finality_check,
    latency_check,
    rss_checks,
    rss_growth,
    spans,
    windows,
)
from tests.support.ledger import Ledger, money_problems, snapshot, transfer_body
from tests.support.platform import ROOT, Platform

# Highest error-free transfers/s measured here (docs/testing.md, bench-transfers).
CAPACITY = {"local": 49.7, "kafka": 40.0}
SAMPLING_FOR_CAPACITY = "0.1"  # the trace sampling those figures were measured with
SAMPLE_EVERY_S = 5.0
FUNDS = 1_000_000  # cents per account: far more than a run moves out of one
MAX_MINUTES = 240.0
WARMUP_MINUTES = 10.0
MAX_RATE = 200.0
SETTLE_S = 900.0  # at most this long finishing, after the run, what it left open
SETTLE_IN_FLIGHT = 40
LOAD_CLIENT = "load client"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Sent:
    payer: Payer
    source: str
    destination: str
    amount: int
    key: str


@dataclass(frozen=True)
class Tick:
    """One sampling moment: the platform's processes, the load client, the machine."""

    platform: Sample
    client: Usage
    machine: MachineCpu


@dataclass
class Run:
    rate: float
    seconds: float
    outcomes: dict[int, Outcome]
    sent: dict[int, Sent]
    ticks: list[Tick]
    restarted: list[str]
    unreadable: list[bytes] = field(default_factory=list)  # bodies of 201s without a transfer
    refreshes: int = 0
    refresh_failures: int = 0


async def _soak(stack: Stack, payers: list[Payer], rate: float, seconds: float) -> Run:
    loop = asyncio.get_running_loop()
    roots = platform_roots(stack)
    accounts = [(p, a) for p in payers for a in p.accounts]
    rng = random.Random(787)
    run = Run(rate, seconds, {}, {}, [], [])

    def make(i: int) -> Request:
        (payer, source), (_, destination) = rng.sample(accounts, 2)
        sent = Sent(payer, source, destination, rng.randint(1, 99), uuid.uuid4().hex)
        run.sent[i] = sent
        return transfer_request(payer, source, destination, sent.amount, sent.key)

    def record(answer: Answer) -> None:
        state = transfer_id = None
        status = answer.status
        if status == 201:
            try:
                body = json.loads(answer.body)
                state, transfer_id = str(body["status"]), str(body["id"])
            except (ValueError, KeyError, TypeError):
                # Seen under overload: the gateway's sidecar answered 201 with an empty body.
                status = UNREADABLE
                run.unreadable.append(answer.body[:200])
        accept_ms = answer.latency * 1000
        final_ms = accept_ms if state in ("completed", "failed") else None
        run.outcomes[answer.index] = Outcome(
            answer.due - started, status, accept_ms, state, final_ms, transfer_id
        )

    def tick() -> Tick:
        usage = usage_by_root(roots)
        return Tick(
            Sample(
                loop.time() - started,
                {n: u.rss_bytes for n, u in usage.items()},
                {n: u.cpu_s for n, u in usage.items()},
            ),
            own_usage(),
            machine_cpu(),
        )

    async def sample(stop: asyncio.Event) -> None:
        reported = 0
        while True:
            run.ticks.append(await asyncio.to_thread(tick))
            # A window's answers are all in (or timed out, 30 s) one window after it ends.
            closed = int(run.ticks[-1].platform.t_s // WINDOW_S) - 1
            while reported < closed:
                _progress(run, reported)
                reported += 1
            try:
                await asyncio.wait_for(stop.wait(), timeout=SAMPLE_EVERY_S)
                return
            except TimeoutError:
                pass

    stop = asyncio.Event()
    pool = ConnectionPool(GATEWAY_PORT, limit=512)
    started = loop.time()
    sampler = asyncio.create_task(sample(stop))
    refresher = asyncio.create_task(keep_tokens_fresh(payers, stop))
    try:
        await offer(pool, rate, seconds, make, on_answer=record)
    finally:
        stop.set()
        pool.close()
        await sampler
        refreshes = await refresher
    run.ticks.append(await asyncio.to_thread(tick))
    run.refreshes, run.refresh_failures = refreshes.done, refreshes.failed
    now = platform_roots(stack)
    run.restarted = sorted(n for n, pid in roots.items() if now.get(n) != pid)
    return run


def _progress(run: Run, index: int) -> None:
    start = index * WINDOW_S
    inside = [o for o in run.outcomes.values() if start <= o.due_s < start + WINDOW_S]
    window = windows(inside, run_s=WINDOW_S)[0]  # those alone, as one window
    rss = sum(run.ticks[-1].platform.rss.values()) / 2**20
    _log(
        f"  [{(index + 1) * WINDOW_S / 60:5.1f} min] {window.offered} offered, "
        f"{window.completed} completed, errors {errors_text(window.errors)}, accept p50 "
        f"{window.accept_p50_ms:.0f} ms p99 {window.accept_p99_ms:.0f} ms; platform RSS "
        f"{rss:.0f} MiB"
    )


async def _settle(platform: Platform, run: Run) -> int:
    """Finish what the run left open - no answer, an error, a pending state - the way a
    careful client does: the same request under the same Idempotency-Key until it is
    accepted, then its final state; for at most SETTLE_S (a collapsed run can leave tens of
    thousands). Returns how many needed it."""
    open_ = [i for i, o in run.outcomes.items() if not o.final]
    if not open_:
        return 0
    _log(f"==> sending {len(open_)} transfers not final in the run again, by their key")
    gate = asyncio.Semaphore(SETTLE_IN_FLIGHT)
    done = 0
    async with Ledger(platform) as ledger:

        async def one(i: int) -> None:
            nonlocal done
            sent = run.sent[i]
            who = sent.payer.customer()
            body = transfer_body(sent.source, sent.destination, sent.amount)
            async with gate:
                for _ in range(60):
                    try:
                        reply = await ledger.post("/api/v1/transfers", body, who, sent.key)
                    except httpx.HTTPError:
                        reply = None
                    if reply is not None and reply.status_code in (201, 202):
                        break
                    await asyncio.sleep(1.0)
                else:
                    return
                final = reply.json()
                if final["status"] == "pending":
                    try:
                        final = await ledger.wait_final(final["id"], who)
                    except AssertionError:
                        return
            # Final now, but not in time: its latency stays unmeasured (infinite).
            run.outcomes[i] = replace(
                run.outcomes[i], state=final["status"], transfer_id=final["id"]
            )
            done += 1
            if done % 1000 == 0:
                _log(f"  {done} of {len(open_)} final")

        try:
            async with asyncio.timeout(SETTLE_S):
                await asyncio.gather(*(one(i) for i in open_))
        except TimeoutError:
            _log(f"  gave up after {SETTLE_S / 60:g} min: {len(open_) - done} still open")
    return len(open_)


async def _money(
    platform: Platform, payers: list[Payer], before: dict[str, int], run: Run
) -> Check:
    unknown = sum(not o.final for o in run.outcomes.values())
    if unknown:
        # Any of those may have posted: their legs would read as stray postings.
        return Check("money conserved", False, f"not checked: {unknown} transfers never final")
    async with Ledger(platform) as ledger:
        after, entries = await snapshot(ledger, [p.customer() for p in payers])
    transfers = {
        o.transfer_id: o.state or "unknown" for o in run.outcomes.values() if o.transfer_id
    }
    problems = money_problems(transfers, entries, before, after)
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if problems[5:] else "")
    return Check(
        "money conserved",
        not problems,
        shown
        or f"{len(after)} accounts hold {sum(after.values())} cents as before, "
        f"{len(transfers)} transfers each posted once (2 legs) or not at all",
    )


async def _after_run(
    platform: Platform, payers: list[Payer], before: dict[str, int], run: Run
) -> Check:
    """Finish what the run left open, then check the money; never lose the run's figures to
    a failure here (it becomes the money check's FAIL). Tokens are kept fresh meanwhile:
    finishing a collapsed run can outlast one."""
    stop = asyncio.Event()
    refresher = None
    try:
        await _refresh_all(payers)
        refresher = asyncio.create_task(keep_tokens_fresh(payers, stop))
        settled = await _settle(platform, run)
        if settled:
            _log(f"==> {settled} transfers finished after the run by their Idempotency-Key")
        return await _money(platform, payers, before, run)
    except Exception as error:  # the report matters more than this one check
        return Check("money conserved", False, f"not checked: {error!r}"[:500])
    finally:
        stop.set()
        if refresher is not None:
            await refresher


async def _balances(platform: Platform, payers: list[Payer]) -> dict[str, int]:
    async with Ledger(platform) as ledger:
        balances, _ = await snapshot(ledger, [p.customer() for p in payers])
    return balances


async def _refresh_all(payers: list[Payer]) -> None:
    """Fresh tokens for the checks after the run (the last ones may be half spent)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{GATEWAY_PORT}", timeout=30) as c:
        for payer in payers:
            await refresh(payer, c)


def _trace_sampling(stack: Stack) -> str:
    """The sampling rate the running sidecars were started with (their --config file)."""
    roots = platform_roots(stack)
    pid = roots.get("daprd-transactions")
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        config = Path(argv[argv.index("--config") + 1])
        found = re.search(r'samplingRate:\s*"([^"]*)"', config.read_text())
    except (OSError, ValueError, IndexError):
        return "unknown"
    return found.group(1) if found else "unknown"


def _checks(run: Run, span: Spans) -> list[Check]:
    outcomes = list(run.outcomes.values())
    checks = [
        latency_check(outcomes, span, "accept", lambda o: o.accepted_ms),
        latency_check(outcomes, span, "accept→final", lambda o: o.until_final_ms),
    ]
    checks += rss_checks(rss_growth([t.platform for t in run.ticks], span))
    checks.append(
        Check(
            "no process restarted",
            not run.restarted,
            ", ".join(run.restarted) or f"{len(run.ticks[0].platform.rss)} processes, same pids",
        )
    )
    checks += [error_check(outcomes), finality_check(outcomes)]
    return checks


def _cores(ticks: list[Tick], start_s: float, stop_s: float) -> tuple[float, float, float]:
    """(platform, load client, other load) in cores between two moments of the run."""
    inside = [t for t in ticks if start_s <= t.platform.t_s <= stop_s]
    if len(inside) < 2:
        return math.nan, math.nan, math.nan
    first, last = inside[0], inside[-1]
    elapsed = last.platform.t_s - first.platform.t_s
    platform = sum(last.platform.cpu_s.values()) - sum(first.platform.cpu_s.values())
    client = last.client.cpu_s - first.client.cpu_s
    machine = last.machine.busy_s - first.machine.busy_s
    return platform / elapsed, client / elapsed, (machine - platform - client) / elapsed


def _table(run: Run, span: Spans, checks: list[Check], header: str) -> str:
    lines = [header, "", "## Bounds", "", "```", *(c.line() for c in checks), "```", ""]
    lines += [
        "## Every 30 s window",
        "",
        "By when each transfer was due. Completed and failed (for funds) in their answer; "
        "accept→final `inf`: more than 1 % of the window's transfers were not final in their "
        "answer (errors). Cores: CPU used over the window by the platform, the load client "
        "and everything else on the machine (±0.05: /proc/stat and the processes are not "
        "read at the same instant).",
        "",
        "| from min | offered | completed | failed (funds) | errors by status | accept p50 ms "
        "| accept p99 ms | accept→final p99 ms | platform cores | load client cores "
        "| other load cores |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for w in windows(run.outcomes.values(), run.seconds):
        errors = errors_text(w.errors)
        platform, client, others = _cores(run.ticks, w.start_s, w.start_s + WINDOW_S)
        lines.append(
            f"| {w.start_s / 60:.1f} | {w.offered} | {w.completed} | {w.failed} | {errors} "
            f"| {w.accept_p50_ms:.0f} | {w.accept_p99_ms:.0f} | {w.final_p99_ms:.0f} "
            f"| {platform:.2f} | {client:.2f} | {others:.2f} |"
        )
    first, last = run.ticks[0], run.ticks[-1]
    elapsed = last.platform.t_s - first.platform.t_s
    done = max(1, sum(o.state in ("completed", "failed") for o in run.outcomes.values()))
    lines += [
        "",
        f"## Every process (RSS baseline: median over minute "
        f"{(span.reference_end_s - span.end_s) / 60:g} to {span.reference_end_s / 60:g}; "
        f"end: median over the last {span.end_s / 60:g} min)",
        "",
        "| process | RSS at start MiB | baseline MiB | end MiB | growth | peak MiB "
        "| CPU cores (mean) | CPU-ms/transfer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in sorted(rss_growth([t.platform for t in run.ticks], span), key=lambda g: -g.end):
        cpu = last.platform.cpu_s[g.name] - first.platform.cpu_s[g.name]
        lines.append(
            f"| {g.name} | {first.platform.rss[g.name] / 2**20:.1f} | {g.baseline / 2**20:.1f} "
            f"| {g.end / 2**20:.1f} | {g.change:+.1%} | {g.peak / 2**20:.1f} "
            f"| {cpu / elapsed:.3f} | {cpu * 1000 / done:.2f} |"
        )
    client_cpu = last.client.cpu_s - first.client.cpu_s
    lines.append(
        f"| *{LOAD_CLIENT} (not bounded: it keeps every answer)* "
        f"| {first.client.rss_bytes / 2**20:.1f} | | {last.client.rss_bytes / 2**20:.1f} | | "
        f"| {client_cpu / elapsed:.3f} | {client_cpu * 1000 / done:.2f} |"
    )
    stolen = (last.machine.stolen_s - first.machine.stolen_s) / elapsed
    platform, client, others = _cores(run.ticks, 0, math.inf)
    lines += [
        "",
        f"Whole run: platform {platform:.2f} cores, load client {client:.2f}, other load on the "
        f"machine (other sessions) {others:.2f}, stolen by the hypervisor {stolen:.2f} "
        f"(of {os.cpu_count()}). Token refreshes: {run.refreshes} "
        f"({run.refresh_failures} failed).",
    ]
    if run.unreadable:
        lines.append(
            f"\n{len(run.unreadable)} answers were 201 without the transfer in their body "
            f"(first: {run.unreadable[0]!r}): counted as errors, finished by their key after."
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--minutes", type=float, default=30.0, help=f"how long (default 30, max {MAX_MINUTES:g})"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="transfers offered a second (default: half the measured capacity of the "
        f"profile: {', '.join(f'{p} {c / 2:.0f}' for p, c in CAPACITY.items())})",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(CAPACITY),
        default=None,
        help="the platform to soak (default: the running one, else local); started here "
        "if nothing is up",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=WARMUP_MINUTES,
        help=f"minutes of the same load before the measured ones (default {WARMUP_MINUTES:g}): "
        "errors and money count, the bounds' reference is taken after it",
    )
    parser.add_argument("--users", type=int, default=40, help="payers, 2 accounts each (40)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    minutes = max(1.0, min(args.minutes, MAX_MINUTES))
    running = Stack(Layout(ROOT), say=_log)
    if running.is_up() and args.profile not in (None, running.profile):
        raise SystemExit(f"soak: the platform is up with profile {running.profile}; make down")
    profile = args.profile or running.profile
    rate = args.rate if args.rate is not None else round(CAPACITY[profile] / 2)
    rate = max(1.0, min(rate, MAX_RATE))
    warmup_s = max(0.0, min(args.warmup, MAX_MINUTES)) * 60
    seconds = warmup_s + minutes * 60
    if not running.is_up():
        os.environ.setdefault(TRACE_SAMPLING_ENV, SAMPLING_FOR_CAPACITY)
    stack = Stack(Layout(ROOT), profile=profile, say=_log)
    with lifted_edge_limit(stack, timeout=180.0) as platform:
        sampling = _trace_sampling(stack)
        users = max(2, args.users)
        _log(f"==> {users} payers, 2 accounts of {FUNDS / 100:,.0f} USD each")
        payers = asyncio.run(funded_payers(platform, users, 2, FUNDS))
        before = asyncio.run(_balances(platform, payers))
        _log(
            f"==> offering {rate:g} transfers/s for {warmup_s / 60:g} min of warm-up, then "
            f"{minutes:g} min measured (profile {profile})"
        )
        run = asyncio.run(_soak(stack, payers, rate, seconds))
        money = asyncio.run(_after_run(platform, payers, before, run))
    span = spans(seconds, warmup_s=warmup_s)
    checks = [*_checks(run, span), money]
    header = (
        f"Profile `{profile}`, trace sampling {sampling}, {rate:g} transfers/s offered open loop "
        f"for {minutes:g} min after {warmup_s / 60:g} min of warm-up at the same rate, "
        f"through the gateway (per-client limit lifted), among "
        f"{2 * len(payers)} accounts of {len(payers)} payers; {os.cpu_count()} cores shared "
        f"with whatever else runs on the machine (see other load)."
    )
    report = publish(f"soak-{profile}", "KAYA787 soak", _table(run, span, checks, header))
    latency_png = report.with_suffix(".png")
    rss_png = report.with_name(f"{report.stem}-rss.png")
    plot_latency(
        windows(run.outcomes.values(), seconds),
        [
            (t.platform.t_s, *_cores(run.ticks, t.platform.t_s - WINDOW_S, t.platform.t_s))
            for t in run.ticks
        ],
        span,
        latency_png,
    )
    plot_rss(
        [t.platform for t in run.ticks],
        [(t.platform.t_s, t.client.rss_bytes) for t in run.ticks],
        span,
        rss_png,
    )
    print(f"plots: {latency_png} {rss_png}")
    print("\n".join(c.line() for c in checks))
    failed = [c for c in checks if not c.passed]
    print(
        f"soak: {'FAIL' if failed else 'PASS'} ({len(checks) - len(failed)}/{len(checks)} bounds)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
