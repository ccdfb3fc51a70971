"""Ledger and transaction rules, and the accounts use cases against a fake repository."""

from __future__ import annotations

from typing import Any

import pytest
from kaya787_accounts.domain import (
    APPLIED_WINDOW,
    SYSTEM,
    USER,
    Account,
    LedgerError,
    Posting,
    post,
)
from kaya787_accounts.service import AccountsService
from kaya787_kit.problems import Problem
from kaya787_kit.state import EtagConflict
from kaya787_transactions.domain import COMPLETED, FAILED, PENDING, Transaction, fingerprint


def _account(kind: str = USER, balance: int = 0, currency: str = "USD") -> Account:
    return Account(
        id="a1", owner_id="u1", currency=currency, kind=kind, balance=balance, created_at="t"
    )


def _posting(amount: int, step: str = "debit", txn: str = "t1") -> Posting:
    return Posting(transaction_id=txn, step=step, account_id="a1", amount=amount, currency="USD")


def test_a_posting_moves_the_balance_and_records_an_entry() -> None:
    account, entry = post(_account(balance=1_000), _posting(-300), "now")
    assert account.balance == 700
    assert entry["amount"] == -300
    assert entry["balance_after"] == 700
    assert account.head == {"count": 1, "last": {**entry, "seq": 0}}
    assert account.applied == {"t1:debit": 700}


def test_user_accounts_never_go_negative_but_funding_accounts_do() -> None:
    with pytest.raises(LedgerError) as low:
        post(_account(balance=100), _posting(-101), "now")
    assert low.value.code == "insufficient_funds"
    funding, _ = post(_account(kind=SYSTEM), _posting(-5_000), "now")
    assert funding.balance == -5_000


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        (0, "USD", "invalid_amount"),
        (10, "EUR", "currency_mismatch"),
    ],
)
def test_invalid_postings_are_refused(amount: int, currency: str, code: str) -> None:
    with pytest.raises(LedgerError) as bad:
        post(_account(balance=100), Posting("t", "debit", "a1", amount, currency), "now")
    assert bad.value.code == code


def test_the_applied_window_is_bounded() -> None:
    account = _account(kind=SYSTEM)
    for i in range(APPLIED_WINDOW + 5):
        account, _ = post(account, _posting(1, txn=f"t{i}"), "now")
    assert len(account.applied) == APPLIED_WINDOW
    assert "t0:debit" not in account.applied
    assert Account.from_json(account.to_json()) == account


class FakeAccounts:
    def __init__(self, *accounts: Account, conflicts: int = 0) -> None:
        self.rows = {a.id: (a, 1) for a in accounts}
        self.conflicts = conflicts
        self.materialised = 0

    async def get(self, account_id: str) -> tuple[Account, str] | None:
        row = self.rows.get(account_id)
        return None if row is None else (row[0], str(row[1]))

    async def insert(self, account: Account, event: dict[str, Any] | None) -> None:
        if account.id in self.rows:
            raise EtagConflict(account.id)
        self.rows[account.id] = (account, 1)

    async def save(self, account: Account, etag: str) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise EtagConflict(account.id)
        current = self.rows[account.id]
        if str(current[1]) != etag:
            raise EtagConflict(account.id)
        self.rows[account.id] = (account, current[1] + 1)

    async def materialise_last_entry(self, account: Account) -> None:
        self.materialised += 1

    async def entries(
        self, account: Account, before: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        return [], None

    async def add_owned(self, owner_id: str, account_id: str) -> None:
        return None

    async def owned(self, owner_id: str) -> list[str]:
        return list(self.rows)


async def test_the_same_step_twice_is_applied_once() -> None:
    repo = FakeAccounts(_account(balance=1_000))
    service = AccountsService(repo)
    first = await service.apply(_posting(-400))
    again = await service.apply(_posting(-400))
    assert (first.balance_after, first.duplicate) == (600, False)
    assert (again.balance_after, again.duplicate) == (600, True)
    assert repo.rows["a1"][0].balance == 600


async def test_lost_races_are_retried_and_endless_ones_are_503() -> None:
    repo = FakeAccounts(_account(balance=1_000), conflicts=3)
    assert (await AccountsService(repo).apply(_posting(-1))).balance_after == 999
    stuck = FakeAccounts(_account(balance=1_000), conflicts=100)
    with pytest.raises(Problem) as busy:
        await AccountsService(stuck, max_retries=4).apply(_posting(-1))
    assert busy.value.status == 503
    assert stuck.rows["a1"][0].balance == 1_000


async def test_funding_accounts_appear_on_first_use_and_others_are_404() -> None:
    repo = FakeAccounts()
    service = AccountsService(repo)
    assert (await service.describe("funding-usd"))["kind"] == SYSTEM
    for unknown in ("funding-xyz", "nobody", "funding-"):
        with pytest.raises(Problem) as missing:
            await service.describe(unknown)
        assert missing.value.status == 404


def _txn(status: str = PENDING) -> Transaction:
    return Transaction(
        id="t1",
        kind="transfer",
        owner_id="u1",
        debit_account_id="a",
        credit_account_id="b",
        amount=5,
        currency="USD",
        status=status,
        created_at="t",
    )


def test_a_final_state_is_final() -> None:
    done = _txn().finish(COMPLETED, None, "later")
    assert done.status == COMPLETED
    assert done.finish(FAILED, "x", "even later") is done
    with pytest.raises(ValueError, match="final"):
        _txn().finish(PENDING, None, "now")


def test_events_have_a_stable_id_and_type() -> None:
    event = _txn().finish(FAILED, "insufficient_funds", "later").event()
    assert event["event_type"] == "transactions.transfer-failed.v1"
    assert event["event_id"] == "t1:failed"
    assert Transaction.from_json(_txn().to_json()) == _txn()


def test_fingerprints_ignore_key_order_but_not_values() -> None:
    assert fingerprint("deposit", {"a": 1, "b": 2}) == fingerprint("deposit", {"b": 2, "a": 1})
    assert fingerprint("deposit", {"a": 1}) != fingerprint("withdrawal", {"a": 1})
    assert fingerprint("deposit", {"a": 1}) != fingerprint("deposit", {"a": 2})
