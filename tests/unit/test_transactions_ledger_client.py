"""A posting counts only when the ledger confirms it; every other answer is retried."""

from __future__ import annotations

import httpx
import pytest
from kaya787_kit.errors import Invalid, NotFound
from kaya787_transactions.adapters import InvokedLedger
from kaya787_transactions.domain import PENDING, Transaction
from kaya787_transactions.ports import LedgerUnconfirmed, PostingOutcome

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
        assert request.url.path == "/v1.0/invoke/accounts/method/internal/postings"
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://sidecar")
    return InvokedLedger(client, "accounts")


async def _post(ledger: InvokedLedger) -> PostingOutcome:
    return await ledger.post(TXN, "transfer", "a", "b", authorised_by="u")


async def test_a_committed_posting_is_committed() -> None:
    outcome = await _post(_ledger(200, b'{"status": "committed", "duplicate": false}'))
    assert outcome.committed


async def test_a_recorded_rejection_is_final_with_its_code() -> None:
    body = b'{"status": "rejected", "code": "insufficient_funds"}'
    outcome = await _post(_ledger(200, body))
    assert (outcome.committed, outcome.code) == (False, "insufficient_funds")


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (422, b'{"code": "currency_mismatch"}', Invalid, "currency_mismatch"),
        (404, b"not json", NotFound, "rejected"),
    ],
)
async def test_refusals_are_raised_as_the_same_kind_of_error(
    status: int, body: bytes, kind: type[Exception], code: str
) -> None:
    with pytest.raises(kind) as refused:
        await _post(_ledger(status, body))
    assert getattr(refused.value, "code", None) == code


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b""),
        (200, b"{}"),
        (200, b'{"status": "maybe"}'),
        (409, b'{"code": "insufficient_funds"}'),
        (204, b""),
        (202, b"{}"),
        (500, b'{"errorCode": "ERR_DIRECT_INVOKE"}'),
        (503, b""),
    ],
)
async def test_anything_unconfirmed_is_retried_not_accepted(status: int, body: bytes) -> None:
    with pytest.raises(LedgerUnconfirmed):
        await _post(_ledger(status, body))
