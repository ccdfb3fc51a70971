"""A posting counts only when the ledger confirms it; every other answer is retried."""

from __future__ import annotations

import httpx
import pytest
from kaya787_transactions.adapters import InvokedLedger, LedgerUnconfirmed
from kaya787_transactions.domain import PENDING, Transaction

TXN = Transaction(
    id="t1",
    kind="transfer",
    owner_id="u",
    debit_account_id="a",
    credit_account_id="b",
    amount=5,
    currency="USD",
    status=PENDING,
    created_at="t",
)


def _ledger(status: int, body: bytes) -> InvokedLedger:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/invoke/accounts/method/internal/debit"
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://sidecar")
    return InvokedLedger(client, "accounts")


async def test_a_confirmed_posting_is_accepted() -> None:
    outcome = await _ledger(200, b'{"balance_after": 10, "duplicate": false}').post(
        "debit", TXN, "debit", "a"
    )
    assert outcome.accepted


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (409, b'{"code": "insufficient_funds"}', "insufficient_funds"),
        (422, b'{"code": "currency_mismatch"}', "currency_mismatch"),
        (404, b"not json", "rejected"),
    ],
)
async def test_final_refusals_fail_the_step(status: int, body: bytes, code: str) -> None:
    outcome = await _ledger(status, body).post("debit", TXN, "debit", "a")
    assert (outcome.accepted, outcome.code) == (False, code)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b""),
        (200, b"{}"),
        (200, b'{"balance_after": "10"}'),
        (204, b""),
        (202, b"{}"),
        (500, b'{"errorCode": "ERR_DIRECT_INVOKE"}'),
        (503, b""),
    ],
)
async def test_anything_unconfirmed_is_retried_not_accepted(status: int, body: bytes) -> None:
    with pytest.raises((LedgerUnconfirmed, httpx.HTTPStatusError)):
        await _ledger(status, body).post("debit", TXN, "debit", "a")
