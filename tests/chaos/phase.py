"""One fault under load: offer, kill -9, restart, wait until the platform serves again,
stop offering, then audit the ledger and analytics. A run is a sequence of these."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from kaya787_launcher.gateway import GATEWAY_PORT
from kaya787_launcher.topology import LOOPBACK

from tests.bench.openloop import ConnectionPool
from tests.bench.payers import Payer, funded_payers, refresh
from tests.chaos.audit import analytics_counts, judge_events, judge_ledger, read_ledger, settle
from tests.chaos.careful_client import REQUEST_TIMEOUT, SteadyLoad, confirm
from tests.chaos.faults import Fault, kill_and_restart
from tests.support.platform import Platform

RECOVERY_WITHIN = 120.0
Say = Callable[[str], None]


@dataclass
class Timing:
    lead: float = 3.0  # load before the kill
    tail: float = 5.0  # load after the platform serves again


@dataclass
class Row:
    fault: str
    serves_again: float | None  # seconds from the kill; None: not within RECOVERY_WITHIN
    accepted: int = 0
    client_errors: Counter[str] = field(default_factory=Counter)
    given_up: int = 0
    transfers_lost: int = 0
    transfers_doubled: int = 0
    events_lost: int = 0
    events_doubled: int = 0
    broken: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            self.serves_again is not None
            and self.given_up == 0
            and not self.broken
            and self.transfers_lost == self.transfers_doubled == 0
            and self.events_lost == self.events_doubled == 0
        )


@dataclass
class Run:
    """What a chaos run keeps between phases."""

    platform: Platform
    client: httpx.AsyncClient  # the public API through NGINX: setup, probes, audits
    pool: ConnectionPool  # the same, for the load
    payers: list[Payer]
    funded: int
    known: set[str]  # every transaction id a client has been given (and the funding)


async def prepare(
    platform: Platform, client: httpx.AsyncClient, pool: ConnectionPool, users: int
) -> Run:
    funds = 1_000_000
    payers = await funded_payers(platform, users, 2, funds)
    view = await read_ledger(client, payers)
    return Run(platform, client, pool, payers, users * 2 * funds, set(view.entries))


def public_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://{LOOPBACK}:{GATEWAY_PORT}",
        timeout=REQUEST_TIMEOUT,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
    )


# One public read per app the public API reaches, each through NGINX, the gateway's
# sidecar and the app's own sidecar: a restarted sidecar can answer its health check
# while its peers' connections to it are still being re-made (gRPC backs off between
# attempts), and only a call across it says it serves. Analytics needs a staff token and
# the dashboard page, not a read, so it is probed by /readyz alone.
PUBLIC_READS = ("/api/v1/users/me", "/api/v1/accounts", "/api/v1/transactions?limit=1")


async def _serving(run: Run, apps: dict[str, httpx.AsyncClient]) -> bool:
    """Every app ready (its /readyz checks its own sidecar and stores) and the public API
    answering through NGINX and the gateway's sidecar."""
    headers = {"authorization": run.payers[0].bearer}
    try:
        for client in apps.values():
            if (await client.get("/readyz")).status_code != 200:
                return False
        for path in PUBLIC_READS:
            if (await run.client.get(path, headers=headers)).status_code != 200:
                return False
    except httpx.HTTPError:
        return False
    return True


async def _until_serving(run: Run, killed_at: float) -> float | None:
    apps = {
        app_id: httpx.AsyncClient(
            base_url=f"http://{LOOPBACK}:{run.platform.stack.run_file.app(app_id).app_port}",
            timeout=5.0,
        )
        for app_id in run.platform.app_ids()
    }
    try:
        while time.monotonic() - killed_at < RECOVERY_WITHIN:
            if await _serving(run, apps):
                return time.monotonic() - killed_at
            await asyncio.sleep(0.25)
        return None
    finally:
        for client in apps.values():
            await client.aclose()


async def one_fault(run: Run, fault: Fault, rate: float, timing: Timing, say: Say) -> Row:
    for payer in run.payers:  # a run outlives an access token
        await refresh(payer, run.client)
    before = await analytics_counts(run.client, run.platform.analyst)
    load = SteadyLoad(run.pool, run.payers, rate)
    load.start()
    await asyncio.sleep(timing.lead)
    killed_at = await kill_and_restart(run.platform.stack, fault)
    row = Row(fault.label, await _until_serving(run, killed_at))
    if row.serves_again is None:
        # Offered load and its retries still in flight: an audit now would read a ledger in
        # motion. The run stops here (run_faults), and says why.
        row.broken.append("did not serve again within the limit: not audited")
        submissions = await load.stop()
        for submission in submissions:
            row.client_errors.update(submission.errors)
        row.accepted = sum(s.accepted is not None for s in submissions)
        return row
    await asyncio.sleep(timing.tail)
    submissions = await load.stop()
    for submission in submissions:
        row.client_errors.update(submission.errors)
    row.given_up = await confirm(run.pool, submissions)
    row.accepted = sum(s.accepted is not None for s in submissions)
    await settle(run.client, submissions)
    audit = judge_ledger(
        submissions, await read_ledger(run.client, run.payers), run.known, run.funded
    )
    row.transfers_lost, row.transfers_doubled = len(audit.lost), len(audit.doubled)
    row.broken = audit.broken
    row.details = audit.lost + audit.doubled
    row.events_lost, row.events_doubled, _ = await judge_events(
        run.client, run.platform.analyst, before, submissions
    )
    say(
        f"  {fault.label}: serves again after {_seconds(row.serves_again)}, "
        f"{row.accepted} accepted, errors {dict(row.client_errors) or 0}, "
        f"lost/doubled {row.transfers_lost}/{row.transfers_doubled}, events "
        f"{row.events_lost}/{row.events_doubled}{', BROKEN' if row.broken else ''}"
    )
    return row


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


async def run_faults(
    platform: Platform, faults: list[Fault], rate: float, users: int, timing: Timing, say: Say
) -> list[Row]:
    """Each fault in turn; stops early when the platform does not come back."""
    rows: list[Row] = []
    pool = ConnectionPool(GATEWAY_PORT, limit=256)
    try:
        async with public_client() as client:
            say(f"==> {users} payers, 2 funded accounts each")
            run = await prepare(platform, client, pool, users)
            for fault in faults:
                say(f"==> kill -9 {fault.process} under {rate:g} transfers/s")
                rows.append(await one_fault(run, fault, rate, timing, say))
                if rows[-1].serves_again is None:
                    say("chaos: the platform did not come back; stopping the run")
                    break
    finally:
        pool.close()
    return rows
