"""Payers for load runs (benchmarks, chaos): users with funded USD accounts, made through
the public API, whose tokens can be renewed when a run outlives them."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx

from tests.support.platform import Platform


@dataclass
class Payer:
    email: str
    refresh_token: str
    bearer: str  # the Authorization header's value
    accounts: list[str]


async def _funded_account(client: httpx.AsyncClient, headers: dict[str, str], funds: int) -> str:
    opened = await client.post("/api/v1/accounts", json={"currency": "USD"}, headers=headers)
    opened.raise_for_status()
    account: str = opened.json()["id"]
    deposit = await client.post(
        "/api/v1/deposits",
        json={"account_id": account, "amount": funds, "currency": "USD"},
        headers={**headers, "idempotency-key": uuid.uuid4().hex},
    )
    deposit.raise_for_status()
    for _ in range(300):
        state = await client.get(f"/api/v1/transfers/{deposit.json()['id']}", headers=headers)
        if state.json()["status"] != "pending":
            break
        await asyncio.sleep(0.1)
    if state.json()["status"] != "completed":
        raise SystemExit(f"funding deposit ended {state.text}")
    return account


async def funded_payers(
    platform: Platform, client: httpx.AsyncClient, users: int, per_user: int, funds: int
) -> list[Payer]:
    """`users` new users with `per_user` accounts each, every account funded by a completed
    pay-in of `funds` cents. `client` talks to the gateway."""

    async def one() -> Payer:
        email, issued = await asyncio.to_thread(platform.register_and_login)
        bearer = f"Bearer {issued['access_token']}"
        headers = {"authorization": bearer}
        accounts = [await _funded_account(client, headers, funds) for _ in range(per_user)]
        return Payer(email, str(issued["refresh_token"]), bearer, accounts)

    payers: list[Payer] = []
    for start in range(0, users, 10):  # a few at a time: registration hashes passwords
        payers += await asyncio.gather(*(one() for _ in range(min(10, users - start))))
    return payers


async def renew(client: httpx.AsyncClient, payer: Payer) -> None:
    """A fresh access token by the refresh grant (refresh tokens rotate: keep the new one)."""
    issued = await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": payer.refresh_token},
    )
    issued.raise_for_status()
    body = issued.json()
    payer.bearer = f"Bearer {body['access_token']}"
    payer.refresh_token = str(body.get("refresh_token", payer.refresh_token))
