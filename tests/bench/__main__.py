"""`make bench`: latency of the platform's hot paths, measured in one run, as a table.

Bounded (a few hundred requests per figure, loopback only) and self-stopping. Figures on a
noisy machine vary run to run; compare the ratios measured within one run. The report is
written to var/reports/bench-<time>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable

import httpx
from kaya787_kit.auth import JwksCache, TokenVerifier
from kaya787_launcher.paths import Layout
from kaya787_launcher.stack import Stack

from tests.bench.report import publish
from tests.support.platform import ROOT, Platform


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _timed(action: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise SystemExit(f"bench: expected {status}, got {response.status_code}: {response.text}")


def run(count: int) -> list[tuple[str, int, float, float]]:
    stack = Stack(Layout(ROOT), say=lambda m: print(m, file=sys.stderr))
    started_here = not stack.is_up()
    if started_here:
        stack.up()
    platform = Platform(stack, started_here)
    rows: list[tuple[str, int, float, float]] = []
    try:
        password = "correct horse battery staple"
        email, issued = platform.register_and_login(password=password)
        bearer = {"authorization": f"Bearer {issued['access_token']}"}
        form = {"grant_type": "password", "username": email, "password": password}
        with platform.gateway() as gateway, platform.sidecar("gateway") as sidecar:
            logins = max(10, count // 10)
            samples = _timed(lambda: _expect(gateway.post("/oauth2/token", data=form), 200), logins)
            rows.append(
                ("password login (gateway -> identity, argon2id)", logins, *_percentiles(samples))
            )
            via_gateway: list[float] = []
            direct: list[float] = []
            me = "/api/v1/users/me"
            for _ in range(count):
                # Interleaved, so both see the same machine load.
                via_gateway += _timed(lambda: _expect(gateway.get(me, headers=bearer), 200), 1)
                direct += _timed(
                    lambda: _expect(
                        sidecar.get(f"/v1.0/invoke/identity/method{me}", headers=bearer), 200
                    ),
                    1,
                )
            rows.append(("GET /users/me through the gateway", count, *_percentiles(via_gateway)))
            rows.append(
                ("GET /users/me on the gateway sidecar directly", count, *_percentiles(direct))
            )
            jwks = gateway.get("/.well-known/jwks.json").json()

        async def fetch() -> dict[str, object]:
            return jwks  # type: ignore[no-any-return]

        async def never_revoked_check() -> list[float]:
            class NotRevoked:
                async def is_revoked(self, token_id: str) -> bool:
                    return False

            verifier = TokenVerifier(
                JwksCache(fetch),
                issuer="http://127.0.0.1:8080",
                audience="kaya787-api",
                revocations=NotRevoked(),
            )
            await verifier.verify(issued["access_token"])  # warm the key cache
            samples = []
            for _ in range(count * 10):
                started = time.perf_counter()
                await verifier.verify(issued["access_token"])
                samples.append(time.perf_counter() - started)
            return samples

        rows.append(
            (
                "token verification in-process (ES256, cached JWKS)",
                count * 10,
                *_percentiles(asyncio.run(never_revoked_check())),
            )
        )
    finally:
        if started_here:
            stack.down(quiet=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--count", type=int, default=300, help="requests per figure")
    args = parser.parse_args()
    rows = run(max(20, min(args.count, 5000)))
    lines = ["| what | n | p50 ms | p99 ms |", "|---|---:|---:|---:|"]
    lines += [f"| {what} | {n} | {p50:.2f} | {p99:.2f} |" for what, n, p50, p99 in rows]
    by_name = {what: p50 for what, _, p50, _ in rows}
    added = (
        by_name["GET /users/me through the gateway"]
        - by_name["GET /users/me on the gateway sidecar directly"]
    )
    lines.append("")
    lines.append(f"gateway added latency (p50): {added:.2f} ms")
    table = "\n".join(lines)
    publish("bench", "KAYA787 benchmark", table)


if __name__ == "__main__":
    main()
