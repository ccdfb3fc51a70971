"""A posting counts only when the ledger confirms it; every other answer is retried. Only
no answer, or a 5xx, counts against accounts in the breaker."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kaya787_kit.circuit_breaker import CLOSED, OPEN, BreakerPolicy, CircuitBreaker, CircuitOpen
from kaya787_kit.errors import AppError, Invalid, NotFound
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


def _breaker() -> CircuitBreaker:
    return CircuitBreaker("accounts", BreakerPolicy(failures=3, cooldown_seconds=60.0))


def _guarded(breaker: CircuitBreaker, answer: Callable[[httpx.Request], httpx.Response]) -> Any:
    def counted(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return answer(request)

    calls: list[str] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(counted), base_url="http://sidecar")
    return InvokedLedger(client, "accounts", breaker=breaker), calls


def _problem(status: int, code: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, json={"code": code, "status": status})


ACCOUNT = "0c4a1403-b525-4246-b805-593239c2fc37"


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, "account_not_found"), (422, "currency_mismatch"), (401, "unauthorized")],
)
async def test_refusals_never_open_the_breaker(status: int, code: str) -> None:
    breaker = _breaker()
    ledger, calls = _guarded(breaker, _problem(status, code))
    for _ in range(10):
        with contextlib.suppress(AppError, LedgerUnconfirmed):
            await ledger.post(TXN, "transfer", "a", "b", authorised_by="u")
        with contextlib.suppress(httpx.HTTPStatusError):
            await ledger.describe(ACCOUNT)
    assert breaker.state == CLOSED
    assert len(calls) == 20


async def test_load_shedding_is_busy_not_broken_and_leaves_it_closed() -> None:
    breaker = _breaker()
    ledger, _ = _guarded(breaker, _problem(503, "overloaded"))
    for _ in range(10):
        with pytest.raises(LedgerUnconfirmed):
            await _post(ledger)
    assert breaker.state == CLOSED


@pytest.mark.parametrize(
    "answer",
    [
        _problem(500, "ERR_DIRECT_INVOKE"),  # Dapr: the app is unreachable
        _problem(503, "unavailable"),  # accounts' own store is down
        _problem(504, "timeout"),
    ],
)
async def test_failures_open_it_and_then_it_answers_without_calling(
    answer: Callable[[httpx.Request], httpx.Response],
) -> None:
    breaker = _breaker()
    ledger, calls = _guarded(breaker, answer)
    for _ in range(3):
        with pytest.raises(LedgerUnconfirmed):
            await _post(ledger)
    assert breaker.state == OPEN
    with pytest.raises(CircuitOpen):
        await _post(ledger)
    with pytest.raises(CircuitOpen):
        await ledger.describe(ACCOUNT)
    assert len(calls) == 3


async def test_no_answer_is_unconfirmed_and_a_failure() -> None:
    def cut_off(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer within the ledger's timeout", request=request)

    breaker = _breaker()
    ledger, _ = _guarded(breaker, cut_off)
    for _ in range(3):
        with pytest.raises(LedgerUnconfirmed):
            await _post(ledger)
    assert breaker.state == OPEN


async def test_a_lookup_of_a_non_id_neither_calls_nor_counts() -> None:
    breaker = _breaker()
    ledger, calls = _guarded(breaker, _problem(500, "ERR_DIRECT_INVOKE"))
    for _ in range(5):
        assert await ledger.describe("not-an-id") is None
    assert (breaker.state, calls) == (CLOSED, [])
