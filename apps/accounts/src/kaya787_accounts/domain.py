"""Ledger rules with no I/O: accounts, postings, idempotent steps, double entry."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from kaya787_accounts.currencies import MINOR_UNITS

# How many recent posting steps an account remembers to make retries no-ops. Workflow
# retries of a step come within minutes, far inside this window.
APPLIED_WINDOW = 2000
USER, SYSTEM = "user", "system"


class LedgerError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def check_currency(code: str) -> str:
    if code not in MINOR_UNITS:
        raise LedgerError("invalid_currency", f"{code!r} is not an ISO 4217 currency code.")
    return code


def funding_account_id(currency: str) -> str:
    """The system account on the other side of every deposit and withdrawal."""
    return f"funding-{currency.lower()}"


@dataclass(frozen=True)
class Account:
    id: str
    owner_id: str
    currency: str
    kind: str
    balance: int
    created_at: str
    head: dict[str, Any] = field(default_factory=dict)  # entry log head: count, last
    applied: dict[str, int] = field(default_factory=dict)  # step id -> balance after

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner_id": self.owner_id,
            "currency": self.currency,
            "balance": self.balance,
            "created_at": self.created_at,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.public(),
            "kind": self.kind,
            "head": self.head,
            "applied": self.applied,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(
            id=str(data["id"]),
            owner_id=str(data["owner_id"]),
            currency=str(data["currency"]),
            kind=str(data.get("kind", USER)),
            balance=int(data["balance"]),
            created_at=str(data["created_at"]),
            head=dict(data.get("head", {})),
            applied={str(k): int(v) for k, v in dict(data.get("applied", {})).items()},
        )


@dataclass(frozen=True)
class Posting:
    """One side of a transaction: `amount` is signed (debit < 0 < credit)."""

    transaction_id: str
    step: str
    account_id: str
    amount: int
    currency: str

    @property
    def step_id(self) -> str:
        return f"{self.transaction_id}:{self.step}"


def post(account: Account, posting: Posting, now: str) -> tuple[Account, dict[str, Any]]:
    """The account after the posting, and its ledger entry. Pure; raises LedgerError."""
    if posting.amount == 0:
        raise LedgerError("invalid_amount", "A posting moves a non-zero amount.")
    if posting.currency != account.currency:
        raise LedgerError(
            "currency_mismatch", f"The account is in {account.currency}, not {posting.currency}."
        )
    balance = account.balance + posting.amount
    if balance < 0 and account.kind != SYSTEM:
        raise LedgerError("insufficient_funds", "The account balance is too low.")
    entry = {
        "transaction_id": posting.transaction_id,
        "step": posting.step,
        "amount": posting.amount,
        "balance_after": balance,
        "created_at": now,
    }
    seq = int(account.head.get("count", 0))
    head = {"count": seq + 1, "last": {**entry, "seq": seq}}
    applied = dict(list(account.applied.items())[-(APPLIED_WINDOW - 1) :])
    applied[posting.step_id] = balance
    return replace(account, balance=balance, head=head, applied=applied), entry
