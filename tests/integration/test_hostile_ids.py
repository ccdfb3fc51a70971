"""Hostile ids through the gateway: every route that takes an id answers a 4xx problem."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest

from tests.support.ledger import Customer, customer, transfer_body
from tests.support.platform import Platform

HOSTILE = {
    "traversal to the state API": "../../../../../state/statestore/x",
    "traversal to the secrets API": "../../../../../secrets/secretstore/redis-password",
    "Dapr key separator": "a||b",
    "NUL": "a\x00b",
    "over-long": "x" * 5_000,
    "fullwidth digits": "\uff11\uff12\uff13",
    "right-to-left override": "abc\u202edef",
    "upper-case uuid": str(uuid.uuid4()).upper(),
    # Encoded in a path as %25: daprd decodes it once and then fails to parse its own URL
    # to the app ("invalid URL escape"), a 500 of its own.
    "percent sign": "%zz",
}


@pytest.fixture(scope="module")
def alice(platform: Platform) -> Customer:
    return customer(platform)


def _assert_problem(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json", response.text[:300]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_ids_in_bodies_are_4xx(platform: Platform, alice: Customer, value: str) -> None:
    mine = alice.accounts[0]
    for path, body in (
        ("/api/v1/transfers", transfer_body(value, mine, 1)),
        ("/api/v1/transfers", transfer_body(mine, value, 1)),
        ("/api/v1/deposits", {"account_id": value, "amount": 1, "currency": "USD"}),
        ("/api/v1/withdrawals", {"account_id": value, "amount": 1, "currency": "USD"}),
    ):
        response = platform.public(
            "POST",
            path,
            json=body,
            headers={**alice.bearer, "Idempotency-Key": uuid.uuid4().hex},
        )
        _assert_problem(response)


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_ids_in_paths_and_queries_are_4xx(
    platform: Platform, alice: Customer, value: str
) -> None:
    segment = quote(value, safe="")
    for path in (
        f"/api/v1/accounts/{segment}",
        f"/api/v1/accounts/{segment}/entries",
        f"/api/v1/transfers/{segment}",
        f"/api/v1/transactions?account_id={segment}",
    ):
        _assert_problem(platform.public("GET", path, headers=alice.bearer))


@pytest.mark.parametrize(
    "key",
    ["a||b", "a\x7fb", "x" * 129, "ключ", ""],
    ids=["separator", "DEL", "long", "cyrillic", "empty"],
)
def test_hostile_idempotency_keys_are_4xx(platform: Platform, alice: Customer, key: str) -> None:
    body = transfer_body(alice.accounts[0], alice.accounts[0], 1)
    # As raw bytes: a client library would refuse to send some of these itself.
    headers: dict[str, str | bytes] = {**alice.bearer, "Idempotency-Key": key.encode()}
    response = platform.public("POST", "/api/v1/transfers", json=body, headers=headers)
    _assert_problem(response)
