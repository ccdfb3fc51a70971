"""Which processes a chaos run kills, and how: every process the platform's plan holds
except the observability side (Jaeger, Prometheus) and the ops console, which carry no
client traffic."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from kaya787_launcher.stack import Stack

NOT_FAULTED = frozenset({"jaeger", "prometheus", "ops-console"})
# How long a killed process stays down before it is started again.
DOWN_SECONDS = 2.0


@dataclass(frozen=True)
class Fault:
    process: str  # its name in the plan, as `kaya787 status` lists it

    @property
    def label(self) -> str:
        kind, _, name = self.process.partition("-")
        if kind == "app" and name:
            return f"app {name}"
        if kind == "daprd" and name:
            return f"sidecar {name}"
        return self.process


def catalogue(process_names: list[str]) -> list[Fault]:
    """Every faultable process, in start order (infrastructure first)."""
    return [Fault(name) for name in process_names if name not in NOT_FAULTED]


def plan_processes(stack: Stack) -> list[str]:
    return [managed.spec.name for tier in stack.tiers() for managed in tier]


def select(available: list[Fault], wanted: list[str]) -> list[Fault]:
    """The faults named in `wanted` (process names or labels), in the order given."""
    by_name = {f.process: f for f in available} | {f.label: f for f in available}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        names = ", ".join(f.process for f in available)
        raise SystemExit(f"chaos: unknown fault(s) {', '.join(unknown)}; known: {names}")
    return [by_name[w] for w in wanted]


async def kill_and_restart(stack: Stack, fault: Fault) -> float:
    """kill -9 the process, wait DOWN_SECONDS, start it again and wait until it is ready;
    the monotonic time of the kill."""
    killed_at = time.monotonic()
    await asyncio.to_thread(stack.stop_service, fault.process, kill=True)
    await asyncio.sleep(DOWN_SECONDS)
    await asyncio.to_thread(stack.start_service, fault.process)
    return killed_at
