"""The load benchmarks' customers: users with funded accounts, their transfer requests, and
their tokens kept fresh through a run longer than a token lives."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from httpx import Response
from kaya787_launcher.gateway import GATEWAY_PORT
from kaya787_launcher.topology import LOOPBACK

from tests.bench.openloop import Request
from tests.support.ledger import Customer
from tests.support.platform import Platform


@dataclass
class Payer:
    bearer: str  # the Authorization header; replaced in place when refreshed
    accounts: list[str]
    refresh_token: str = ""
    expires_in: float = 900.0  # seconds the access token lives (the token response's)

    def customer(self) -> Customer:
        """The same user for tests/support/ledger's Ledger (reads past the edge)."""
        return Customer({"authorization": self.bearer}, self.accounts)


def _gateway(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://{LOOPBACK}:{GATEWAY_PORT}", timeout=timeout)


# What a careful client does with a 503 or 429 (a sidecar restarted moments ago, a store
# reconnecting, the edge shedding): wait what Retry-After says and ask again, the same
# Idempotency-Key on a money POST. Bounded: the setup of a run fails rather than hangs.
RETRIES = 30


async def _patiently(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Response:
    for _ in range(RETRIES):
        response = await client.request(method, url, **kwargs)
        if response.status_code not in (429, 503):
            return response
        await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 5.0))
    return response


async def funded_payers(platform: Platform, users: int, per_user: int, funds: int) -> list[Payer]:
    """Users with accounts, each account funded by a completed pay-in of `funds`."""
    async with _gateway(60.0) as client:

        async def one() -> Payer:
            _, issued = await asyncio.to_thread(platform.register_and_login)
            bearer = f"Bearer {issued['access_token']}"
            headers = {"authorization": bearer}
            accounts = []
            for _ in range(per_user):
                # Not retried: a second POST would open a second account.
                opened = await client.post(
                    "/api/v1/accounts", json={"currency": "USD"}, headers=headers
                )
                opened.raise_for_status()
                account = opened.json()["id"]
                deposit = await _patiently(
                    client,
                    "POST",
                    "/api/v1/deposits",
                    json={"account_id": account, "amount": funds, "currency": "USD"},
                    headers={**headers, "idempotency-key": uuid.uuid4().hex},
                )
                deposit.raise_for_status()
                location = f"/api/v1/transfers/{deposit.json()['id']}"
                for _ in range(300):
                    state = await _patiently(client, "GET", location, headers=headers)
                    state.raise_for_status()
                    if state.json()["status"] != "pending":
                        break
                    await asyncio.sleep(0.1)
                if state.json()["status"] != "completed":
                    raise SystemExit(f"bench: funding deposit ended {state.text}")
                accounts.append(account)
            return Payer(
                bearer, accounts, str(issued["refresh_token"]), float(issued["expires_in"])
            )

        payers: list[Payer] = []
        for start in range(0, users, 10):  # a few at a time: registration hashes passwords
            payers += await asyncio.gather(*(one() for _ in range(min(10, users - start))))
        return payers


def transfer_request(
    payer: Payer, source: str, destination: str, amount: int = 1, key: str | None = None
) -> Request:
    """POST /api/v1/transfers of `amount` USD cents under `key` (sent again with the same
    key and body, it is the same transfer), a fresh Idempotency-Key when None."""
    body = json.dumps(
        {
            "source_account_id": source,
            "destination_account_id": destination,
            "amount": amount,
            "currency": "USD",
        }
    ).encode()
    return Request(
        "POST",
        "/api/v1/transfers",
        {
            "authorization": payer.bearer,
            "content-type": "application/json",
            "idempotency-key": key or uuid.uuid4().hex,
        },
        body,
    )


async def refresh(payer: Payer, client: httpx.AsyncClient) -> None:
    """A new access token by the refresh grant (cheap: no password hash), in place."""
    issued = await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": payer.refresh_token},
    )
    issued.raise_for_status()
    body = issued.json()
    payer.bearer = f"Bearer {body['access_token']}"
    payer.refresh_token = str(body["refresh_token"])  # rotated: the old one is spent
    payer.expires_in = float(body["expires_in"])


@dataclass
class Refreshes:
    done: int = 0
    failed: int = 0  # each retried a round later, while the old token still lives


async def keep_tokens_fresh(payers: list[Payer], stop: asyncio.Event) -> Refreshes:
    """Refresh one payer at a time, round robin, so each token is renewed at about half its
    lifetime and the refreshes trickle instead of arriving as a burst that would show in
    the latency being measured."""
    counts = Refreshes()
    if not payers:
        return counts
    every = min(p.expires_in for p in payers) / 2 / len(payers)
    async with _gateway(30.0) as client:
        while True:
            for payer in payers:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=every)
                    return counts
                except TimeoutError:
                    pass
                try:
                    await refresh(payer, client)
                    counts.done += 1
                except httpx.HTTPError:
                    counts.failed += 1
