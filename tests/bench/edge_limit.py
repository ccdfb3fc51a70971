"""The platform as a load benchmark needs it: up, with NGINX's per-client limit lifted.

One client address offers a benchmark's whole load, so the gateway's per-client limit
(KAYA787_GATEWAY_RATE) would answer most of it 429. The limit is lifted for the block and
restored after; a platform started here is stopped again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from kaya787_launcher.stack import Stack

from tests.support.platform import Platform

LIFTED_RATE = "100000"  # the gateway's per-client limit while a benchmark runs


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def lifted_edge_limit(stack: Stack, timeout: float = 90.0) -> Iterator[Platform]:
    os.environ["KAYA787_GATEWAY_RATE"] = LIFTED_RATE
    started_here = not stack.is_up()
    if started_here:
        stack.up(timeout=timeout)
    else:
        _restart_nginx(stack, "with the per-client limit lifted (KAYA787_GATEWAY_RATE)")
    try:
        yield Platform(stack, started_here)
    finally:
        os.environ.pop("KAYA787_GATEWAY_RATE", None)
        if started_here:
            stack.down(quiet=True)
        else:
            _restart_nginx(stack, "with its default per-client limit")


def _restart_nginx(stack: Stack, why: str) -> None:
    """NGINX reads the limit only when it starts (the launcher renders its config then)."""
    _log(f"==> restarting NGINX {why}")
    stack.stop_service("nginx")
    stack.start_service("nginx")
