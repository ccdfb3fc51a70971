"""Ledger rules and the accounts use cases against a fake repository."""

from __future__ import annotations

import json

import pytest
from kaya787_accounts.api import PostingBody
from kaya787_accounts.domain import (
    COMMITTED,
    REJECTED,
    SYSTEM_SHARDS,
    USER,
    Account,
    LedgerError,
    PostingRequest,
    apply,
    max_posting,
    validate,
)
from kaya787_accounts.service import AccountsService
from kaya787_kit.errors import AppError
from kaya787_kit.money import MAX_SAFE_INTEGER
from kaya787_kit.problems import status_of
from pydantic import ValidationError

from tests.fakes.accounts import FakeAccounts

# Customer accounts carry the ids the platform mints (UUIDs); others name nothing.
A1 = "00000000-0000-4000-8000-0000000000a1"
A2 = "00000000-0000-4000-8000-0000000000a2"


def _user(
    account_id: str = A1, balance: int = 0, owner: str = "u1", currency: str = "USD"
) -> Account:
    return Account(
        id=account_id, owner_id=owner, currency=currency, kind=USER, balance=balance, created_at="t"
    )


def _transfer(
    amount: int, txn: str = "t1", source: str = A1, destination: str = A2, by: str | None = "u1"
) -> PostingRequest:
    return PostingRequest(
        id=f"{txn}:transfer",
        transaction_id=txn,
        kind="transfer",
        step="transfer",
        debit_account_id=source,
        credit_account_id=destination,
        amount=amount,
        currency="USD",
        authorised_by=by,
    )


def _deposit(amount: int, txn: str, account: str = A1) -> PostingRequest:
    return PostingRequest(
        id=f"{txn}:deposit",
        transaction_id=txn,
        kind="deposit",
        step="deposit",
        debit_account_id="partner-usd",
        credit_account_id=account,
        amount=amount,
        currency="USD",
    )


def test_a_posting_moves_both_legs_and_records_an_entry_for_each_user_account() -> None:
    applied = apply(_transfer(300), _user(A1, 1_000), _user(A2, 5, "u2"), "now")
    assert applied.record.status == COMMITTED
    assert [(a.id, a.balance, a.entries) for a in applied.accounts] == [
        (A1, 700, 1),
        (A2, 305, 1),
    ]
    assert [(i, seq, e["amount"], e["balance_after"]) for i, seq, e in applied.entries] == [
        (A1, 0, -300, 700),
        (A2, 0, 300, 305),
    ]
    assert applied.record.balances == {A1: 700, A2: 305}


def test_an_overdraft_is_a_rejection_that_changes_nothing() -> None:
    applied = apply(_transfer(101), _user(A1, 100), _user(A2, owner="u2"), "now")
    assert (applied.record.status, applied.record.code) == (REJECTED, "insufficient_funds")
    assert applied.accounts == ()
    assert applied.entries == ()


def test_a_balance_beyond_the_safe_integer_range_is_rejected() -> None:
    rich = _user(A2, MAX_SAFE_INTEGER - 5, "u2")
    applied = apply(_transfer(10), _user(A1, 100), rich, "now")
    assert (applied.record.status, applied.record.code) == (REJECTED, "balance_limit")


@pytest.mark.parametrize(
    ("currency", "limit"),
    [("USD", 10**8), ("JPY", 10**6), ("BHD", 10**9), ("EUR", 10**8)],
)
def test_the_posting_limit_follows_the_currencys_exponent(currency: str, limit: int) -> None:
    assert max_posting(currency) == limit
    request = PostingRequest(
        "t:transfer", "t", "transfer", "transfer", A1, A2, limit + 1, currency, "u1"
    )
    with pytest.raises(LedgerError) as over:
        validate(request, _user(currency=currency), _user(A2, currency=currency))
    assert over.value.code == "amount_out_of_range"


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (_transfer(0), "amount_out_of_range"),
        (_transfer(2**53 + 1), "amount_out_of_range"),
        (_transfer(5, source=A1, destination=A1), "same_account"),
        (_transfer(5, by="someone-else"), "account_not_found"),
        (_transfer(5, destination="nobody"), "destination_account_not_found"),
        # A customer cannot make a transfer out of a system account: that would mint money.
        (_transfer(5, source="partner-usd", by=None), "invalid_posting"),
        (
            PostingRequest("t:x", "t", "transfer", "deposit", A1, A2, 5, "USD"),
            "invalid_posting",
        ),
    ],
)
def test_requests_the_ledger_will_never_accept_are_refused(
    request_: PostingRequest, code: str
) -> None:
    accounts = {
        A1: _user(A1, 100),
        A2: _user(A2, owner="u2"),
        "partner-usd": Account("partner-usd~0", "system", "USD", "system", 0, "t"),
    }
    with pytest.raises(LedgerError) as refused:
        validate(
            request_,
            accounts.get(request_.debit_account_id),
            accounts.get(request_.credit_account_id),
        )
    assert refused.value.code == code


def test_an_account_document_stays_small_whatever_its_history() -> None:
    account, other = _user(A1, 10**12), _user(A2, owner="u2")
    for i in range(10_000):
        applied = apply(_transfer(1, txn=f"t{i}"), account, other, "2026-12-01T10:00:00+00:00")
        account, other = applied.accounts
    assert account.entries == 10_000
    assert len(json.dumps(account.to_json())) < 1024
    assert Account.from_json(account.to_json()) == account


async def test_the_same_posting_twice_is_applied_once() -> None:
    repo = FakeAccounts(_user(A1, 1_000), _user(A2, owner="u2"))
    service = AccountsService(repo)
    first = await service.post(_transfer(400))
    again = await service.post(_transfer(400))
    assert (first.record.status, first.duplicate) == (COMMITTED, False)
    assert (again.record, again.duplicate) == (first.record, True)
    assert repo.rows[A1][0].balance == 600
    assert len(repo.events) == 1


async def test_a_replay_after_5000_later_postings_on_the_account_has_no_effect() -> None:
    repo = FakeAccounts(_user(A1, 0))
    service = AccountsService(repo)
    first = await service.post(_deposit(7, "first"))
    for i in range(5000):
        await service.post(_deposit(1, f"later-{i}"))
    replay = await service.post(_deposit(7, "first"))
    assert replay.duplicate
    assert replay.record == first.record
    assert repo.rows[A1][0].balance == 5007
    assert repo.commits == 5001


async def test_a_rejection_is_the_answer_forever_even_after_the_money_arrives() -> None:
    repo = FakeAccounts(_user(A1, 0), _user(A2, owner="u2"))
    service = AccountsService(repo)
    rejected = await service.post(_transfer(50))
    assert (rejected.record.status, rejected.record.code) == (REJECTED, "insufficient_funds")
    await service.post(_deposit(100, "d1"))
    again = await service.post(_transfer(50))
    assert (again.record.status, again.duplicate) == (REJECTED, True)
    assert repo.rows[A1][0].balance == 100


async def test_a_refusal_writes_nothing() -> None:
    repo = FakeAccounts(_user(A1, 100))
    with pytest.raises(AppError) as missing:
        await AccountsService(repo).post(_transfer(5, destination="nobody"))
    assert (status_of(missing.value), missing.value.code) == (404, "destination_account_not_found")
    assert (repo.postings, repo.events) == ({}, [])


async def test_lost_races_are_retried_and_endless_ones_are_503_with_nothing_written() -> None:
    repo = FakeAccounts(_user(A1, 1_000), _user(A2, owner="u2"), conflicts=3)
    assert (await AccountsService(repo).post(_transfer(1))).record.status == COMMITTED
    stuck = FakeAccounts(_user(A1, 1_000), _user(A2, owner="u2"), conflicts=100)
    with pytest.raises(AppError) as busy:
        await AccountsService(stuck, max_retries=4).post(_transfer(1))
    assert status_of(busy.value) == 503
    assert stuck.rows[A1][0].balance == 1_000
    assert stuck.postings == {}


async def test_deposits_spread_over_the_partner_accounts_shards_and_sum_up() -> None:
    repo = FakeAccounts(_user(A1, 0))
    service = AccountsService(repo)
    for i in range(64):
        await service.post(_deposit(10, f"d{i}"))
    shards = [i for i in repo.rows if i.startswith("partner-usd~")]
    assert 1 < len(shards) <= SYSTEM_SHARDS
    partner = await service.describe("partner-usd")
    assert (partner["balance"], partner["kind"]) == (-640, "system")
    assert repo.rows[A1][0].balance == 640


async def test_unknown_accounts_and_shard_ids_are_404() -> None:
    service = AccountsService(FakeAccounts())
    for unknown in ("partner-xyz", "nobody", "partner-", "funding-usd", "partner-usd~0"):
        with pytest.raises(AppError) as missing:
            await service.describe(unknown)
        assert status_of(missing.value) == 404


async def test_every_posting_has_one_event_keyed_by_the_customer_account() -> None:
    repo = FakeAccounts(_user(A1, 0), _user(A2, owner="u2"))
    service = AccountsService(repo)
    await service.post(_deposit(10, "d1"))
    await service.post(_transfer(500))  # rejected: an event too (a failed transfer)
    assert [(e.event_id, e.event_type, e.partition_key) for e in repo.events] == [
        ("d1:deposit", "accounts.posting-committed.v1", A1),
        ("t1:transfer", "accounts.posting-rejected.v1", A1),
    ]
    assert repo.events[1].data["code"] == "insufficient_funds"


@pytest.mark.parametrize(
    "hostile",
    [
        "../../../../../state/statestore/x",
        "../../../../../secrets/secretstore/redis-password",
        "a||b",
        "a\x00b",
        "x" * 5_000,
        "\uff21\uff22\uff23-\uff11\uff12\uff13",  # fullwidth
        "00000000-0000-4000-8000-0000000000A1",  # not the canonical (lowercase) form
    ],
)
async def test_ids_that_name_nothing_never_reach_the_store(hostile: str) -> None:
    accounts = FakeAccounts()
    service = AccountsService(accounts)
    for request in (_transfer(1, source=hostile), _transfer(1, destination=hostile)):
        with pytest.raises(AppError) as refused:
            await service.post(request)
        assert status_of(refused.value) == 404
    for read in (service.get_owned("u1", hostile), service.describe(hostile)):
        with pytest.raises(AppError) as missing:
            await read
        assert status_of(missing.value) == 404
    assert accounts.rows == {}
    assert accounts.postings == {}


@pytest.mark.parametrize("stamp", ["yesterday", "2026-12-03T10:00:00", "x" * 41])
def test_a_posting_with_a_bad_acceptance_time_is_refused_before_anything(stamp: str) -> None:
    body = {
        "id": "t1:transfer",
        "transaction_id": "t1",
        "kind": "transfer",
        "step": "transfer",
        "debit_account_id": A1,
        "credit_account_id": A2,
        "amount": 1,
        "currency": "USD",
        "created_at": stamp,
    }
    with pytest.raises(ValidationError):
        PostingBody.model_validate(body)
    assert PostingBody.model_validate({**body, "created_at": "2026-12-03T10:00:00+00:00"})
