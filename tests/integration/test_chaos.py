"""The part of `make chaos` that runs in `make test`: under a steady load of transfers through
the gateway, kill -9 one app, one sidecar and the broker, each restarted, and nothing is lost
or doubled (ledger and analytics), every invariant holds and the platform serves again. The
other faults (placement, scheduler, sentry, NGINX, every app and sidecar) are `make chaos`;
tests/integration/test_ledger.py kills apps, sidecars and PostgreSQL under rail sagas too."""

from __future__ import annotations

import sys

import pytest

from tests.chaos.faults import catalogue, plan_processes, select
from tests.chaos.phase import Timing, run_faults
from tests.chaos.table import table
from tests.support.platform import Platform

pytestmark = pytest.mark.integration

IN_MAKE_TEST = {
    "local": ["app-accounts", "daprd-transactions", "redis"],
    # The kafka profile's apps and sidecars are killed by test_ledger.py already.
    "kafka": ["kafka"],
}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def test_killed_processes_lose_and_double_nothing(platform: Platform) -> None:
    wanted = IN_MAKE_TEST[platform.stack.profile]
    faults = select(catalogue(plan_processes(platform.stack)), wanted)
    rows = await run_faults(platform, faults, 10.0, 6, Timing(lead=2.0, tail=3.0), _say)
    report = table(rows)
    assert [r.fault for r in rows] == [f.label for f in faults], report
    assert all(r.accepted > 0 for r in rows), report
    assert all(r.clean for r in rows), report
