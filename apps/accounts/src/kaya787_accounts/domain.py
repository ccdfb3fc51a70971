"""Ledger rules with no I/O: accounts, postings, double entry, money bounds.

A posting moves `amount` from one account to another, both legs at once. Its id is its
idempotency key, forever: the posting's record is stored under that id in the same state
transaction as the legs, so a retried posting finds it and changes nothing.

Money enters and leaves only through system accounts, never out of thin air:
- `partner-<cur>`: the payment partner's side. A pay-in debits it, a payout credits it, so
  its balance is minus the money inside the ledger.
- `payouts-<cur>`: money on its way out (held for a payout until the partner pays it).
System accounts are hot (every deposit touches one), so each is kept as SYSTEM_SHARDS
documents and a posting picks one by its id; the account's balance is their sum.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from kaya787_contracts.accounts import PostingV1, posting_event_type
from kaya787_kit.currencies import MINOR_UNITS
from kaya787_kit.money import is_safe, minor_limit

USER, SYSTEM = "user", "system"
PARTNER, PAYOUTS = "partner", "payouts"
SYSTEM_ROLES = (PARTNER, PAYOUTS)
SYSTEM_SHARDS = 8
COMMITTED, REJECTED = "committed", "rejected"
# Which way each step of each kind may move money: (debited role, credited role). Nothing
# else is a posting, so no request can move money into or out of the ledger but these.
ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    ("transfer", "transfer"): (USER, USER),
    ("deposit", "deposit"): (PARTNER, USER),
    ("withdrawal", "hold"): (USER, PAYOUTS),
    ("withdrawal", "settle"): (PAYOUTS, PARTNER),
    ("withdrawal", "refund"): (PAYOUTS, USER),
}
# The most one posting may move, in major units of its currency (10^6 USD, 10^6 JPY, ...).
MAX_POSTING_MAJOR = 1_000_000


class LedgerError(Exception):
    """A request the ledger refuses before anything is written (it never will accept it)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def check_currency(code: str) -> str:
    if code not in MINOR_UNITS:
        raise LedgerError("invalid_currency", f"{code!r} is not an ISO 4217 currency code.")
    return code


def max_posting(currency: str) -> int:
    """The largest amount one posting may move, in minor units of `currency`."""
    return minor_limit(MINOR_UNITS[check_currency(currency)], MAX_POSTING_MAJOR)


def system_account_id(role: str, currency: str) -> str:
    return f"{role}-{currency.lower()}"


def parse_system_account(account_id: str) -> tuple[str, str] | None:
    """(role, currency) of a system account id, None for anything else."""
    role, _, currency = account_id.partition("-")
    if role in SYSTEM_ROLES and currency.upper() in MINOR_UNITS and currency.islower():
        return role, currency.upper()
    return None


def shard_ids(account_id: str) -> list[str]:
    return [f"{account_id}~{k}" for k in range(SYSTEM_SHARDS)]


def shard_for(account_id: str, posting_id: str) -> str:
    """The shard of a system account one posting uses (the same one on every retry)."""
    return f"{account_id}~{zlib.crc32(posting_id.encode()) % SYSTEM_SHARDS}"


@dataclass(frozen=True)
class Account:
    """One balance document: O(1) in size, whatever the account's history."""

    id: str
    owner_id: str
    currency: str
    kind: str
    balance: int
    created_at: str
    entries: int = 0  # how many ledger entries it has (the next one's seq)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner_id": self.owner_id,
            "currency": self.currency,
            "balance": self.balance,
            "created_at": self.created_at,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.public(), "kind": self.kind, "entries": self.entries}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(
            id=str(data["id"]),
            owner_id=str(data["owner_id"]),
            currency=str(data["currency"]),
            kind=str(data.get("kind", USER)),
            balance=int(data["balance"]),
            created_at=str(data["created_at"]),
            entries=int(data.get("entries", 0)),
        )


def new_system_shard(shard_id: str, currency: str, now: str) -> Account:
    return Account(
        id=shard_id, owner_id="system", currency=currency, kind=SYSTEM, balance=0, created_at=now
    )


@dataclass(frozen=True)
class PostingRequest:
    id: str  # unique per step of a transaction: the posting's idempotency key
    transaction_id: str
    kind: str
    step: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    # The user who must own the debited account when it is a user's (None: the platform
    # itself moves the money, as a refund or a confirmed pay-in does).
    authorised_by: str | None = None
    created_at: str | None = None  # when the transaction was accepted

    @property
    def customer_account_id(self) -> str:
        """The user's side, which keys the posting's event (one account's events in order)."""
        if parse_system_account(self.debit_account_id) is None:
            return self.debit_account_id
        return self.credit_account_id


@dataclass(frozen=True)
class PostingRecord:
    """What a posting did, stored under its id forever: a retry answers with it."""

    id: str
    transaction_id: str
    kind: str
    step: str
    status: str
    code: str | None
    amount: int
    currency: str
    debit_account_id: str
    credit_account_id: str
    posted_at: str
    created_at: str | None = None
    balances: dict[str, int] = field(default_factory=dict)  # user accounts' balance after

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "transaction_id": self.transaction_id,
            "kind": self.kind,
            "step": self.step,
            "status": self.status,
            "code": self.code,
            "amount": self.amount,
            "currency": self.currency,
            "debit_account_id": self.debit_account_id,
            "credit_account_id": self.credit_account_id,
            "posted_at": self.posted_at,
            "created_at": self.created_at,
            "balances": dict(self.balances),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PostingRecord:
        return cls(
            id=str(data["id"]),
            transaction_id=str(data["transaction_id"]),
            kind=str(data["kind"]),
            step=str(data["step"]),
            status=str(data["status"]),
            code=None if data.get("code") is None else str(data["code"]),
            amount=int(data["amount"]),
            currency=str(data["currency"]),
            debit_account_id=str(data["debit_account_id"]),
            credit_account_id=str(data["credit_account_id"]),
            posted_at=str(data["posted_at"]),
            created_at=None if data.get("created_at") is None else str(data["created_at"]),
            balances={str(k): int(v) for k, v in dict(data.get("balances", {})).items()},
        )


def validate(request: PostingRequest, debit: Account | None, credit: Account | None) -> None:
    """Refusals that no retry or later balance can change; raises LedgerError."""
    route = ROUTES.get((request.kind, request.step))
    if route is None:
        raise LedgerError("invalid_posting", f"No posting {request.kind}/{request.step}.")
    check_currency(request.currency)
    if not 0 < request.amount <= max_posting(request.currency):
        raise LedgerError(
            "amount_out_of_range",
            f"One posting moves 1 to {max_posting(request.currency)} minor units of "
            f"{request.currency}.",
        )
    if request.debit_account_id == request.credit_account_id:
        raise LedgerError("same_account", "Source and destination are the same.")
    if debit is None or (
        # A user may only spend from an account of their own: never from the platform's.
        request.authorised_by is not None
        and (debit.kind != USER or debit.owner_id != request.authorised_by)
    ):
        # Someone else's account and a missing one look the same.
        raise LedgerError("account_not_found", "No such account.")
    if credit is None:
        raise LedgerError("destination_account_not_found", "No such destination account.")
    if (role_of(debit), role_of(credit)) != route:
        raise LedgerError(
            "invalid_posting",
            f"A {request.kind} {request.step} cannot move between these accounts.",
        )
    for account in (debit, credit):
        if account.currency != request.currency:
            raise LedgerError(
                "currency_mismatch",
                f"Account {_public_id(account.id)} is in {account.currency}, "
                f"not {request.currency}.",
            )


def role_of(account: Account) -> str:
    """USER, or the system account's role (PARTNER, PAYOUTS)."""
    if account.kind == USER:
        return USER
    parsed = parse_system_account(_public_id(account.id))
    return parsed[0] if parsed else SYSTEM


def _public_id(account_id: str) -> str:
    return account_id.partition("~")[0]


@dataclass(frozen=True)
class Applied:
    record: PostingRecord
    accounts: tuple[Account, ...] = ()  # changed documents (empty when rejected)
    entries: tuple[tuple[str, int, dict[str, Any]], ...] = ()  # (account id, seq, entry)


def apply(request: PostingRequest, debit: Account, credit: Account, now: str) -> Applied:
    """Both legs of a validated posting, or its rejection when a balance forbids it."""
    record = PostingRecord(
        id=request.id,
        transaction_id=request.transaction_id,
        kind=request.kind,
        step=request.step,
        status=COMMITTED,
        code=None,
        amount=request.amount,
        currency=request.currency,
        debit_account_id=request.debit_account_id,
        credit_account_id=request.credit_account_id,
        posted_at=now,
        created_at=request.created_at,
    )
    debit_after = debit.balance - request.amount
    credit_after = credit.balance + request.amount
    if debit.kind == USER and debit_after < 0:
        return Applied(replace(record, status=REJECTED, code="insufficient_funds"))
    if not (is_safe(debit_after) and is_safe(credit_after)):
        return Applied(replace(record, status=REJECTED, code="balance_limit"))
    accounts, entries, balances = [], [], {}
    for account, amount, after in (
        (debit, -request.amount, debit_after),
        (credit, request.amount, credit_after),
    ):
        changed = replace(account, balance=after)
        if account.kind == USER:
            # System shards keep no entry log: the posting record holds both legs.
            entries.append(
                (
                    account.id,
                    account.entries,
                    {
                        "transaction_id": request.transaction_id,
                        "posting_id": request.id,
                        "step": request.step,
                        "amount": amount,
                        "balance_after": after,
                        "created_at": now,
                        "seq": account.entries,
                    },
                )
            )
            changed = replace(changed, entries=account.entries + 1)
            balances[account.id] = after
        accounts.append(changed)
    return Applied(replace(record, balances=balances), tuple(accounts), tuple(entries))


def posting_event(record: PostingRecord) -> PostingV1:
    """The accounts.postings.v1 payload of a committed or rejected posting."""
    return PostingV1(
        event_type=posting_event_type(record.status),
        event_id=record.id,
        **record.to_json(),
        posting_id=record.id,
    )
