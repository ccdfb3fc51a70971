"""`make chaos`: kill -9 each process of the platform in turn under a steady load of
transfers through the gateway, restart it, wait until the platform serves again, and audit.

Per fault: seconds from the kill until every app is ready and the public API answers,
transfers accepted, errors the careful client saw on the way (it retries with the same
Idempotency-Key), transfers given up, lost and doubled, analytics events lost and doubled,
and whether the ledger's invariants hold (balances equal their entries, money conserved,
none negative). Exits 1 unless every lost/doubled column is 0 and every invariant holds.
Loopback only; bounded (each phase ends by itself; a platform that does not come back
within 120 s stops the run). One client address offers the load, so the gateway's
per-client limit is lifted for the run (KAYA787_GATEWAY_RATE), as the benchmarks do.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from kaya787_launcher.paths import Layout
from kaya787_launcher.stack import Stack

from tests.bench.edge_limit import lifted_edge_limit
from tests.bench.report import publish
from tests.chaos.faults import catalogue, plan_processes, select
from tests.chaos.phase import Timing, run_faults
from tests.chaos.table import table
from tests.support.platform import ROOT

# Half of the measured capacity (about 39 transfers/s on the local profile, 38 on kafka:
# docs/testing.md), as the hardening issue asks.
DEFAULT_RATE = 20.0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile", choices=("local", "kafka"), help="default: the running one, else local"
    )
    parser.add_argument("--faults", help="comma-separated process names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the faults and exit")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="transfers/s offered")
    parser.add_argument("--users", type=int, default=20, help="payers (2 accounts each)")
    parser.add_argument("--lead", type=float, default=3.0, help="seconds of load before a kill")
    parser.add_argument(
        "--tail", type=float, default=5.0, help="seconds of load after it serves again"
    )
    return parser


def main() -> int:
    args = _parser().parse_args()
    stack = Stack(Layout(ROOT), profile=args.profile, say=_say)
    available = catalogue(plan_processes(stack))
    if args.list:
        print("\n".join(f"{f.process:22} {f.label}" for f in available))
        return 0
    faults = select(available, args.faults.split(",")) if args.faults else available
    rate = max(1.0, min(args.rate, 200.0))
    timing = Timing(lead=max(1.0, min(args.lead, 60.0)), tail=max(1.0, min(args.tail, 60.0)))
    with lifted_edge_limit(stack) as platform:
        rows = asyncio.run(run_faults(platform, faults, rate, max(2, args.users), timing, _say))
    intro = (
        f"Profile `{stack.profile}`; {rate:g} transfers/s offered through the gateway "
        f"(per-client limit lifted) by a careful client among {2 * max(2, args.users)} "
        f"accounts; each process killed with SIGKILL, started again after 2 s. 'Serves "
        f"again' counts from the kill until every app is ready and the public API answers.\n\n"
    )
    publish(f"chaos-{stack.profile}", "KAYA787 chaos", intro + table(rows))
    clean = len(rows) == len(faults) and all(r.clean for r in rows)
    print("chaos: every fault clean" if clean else "chaos: FAILED (see the table)")
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
