"""What accounts' routes answer, as OpenAPI documents it (docs/api.md names the fields)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class AccountOut(BaseModel):
    id: str
    owner_id: str
    currency: str
    balance: int  # minor units
    created_at: str


class EntryOut(BaseModel):
    transaction_id: str
    amount: int  # minor units: positive credits, negative debits
    balance_after: int
    created_at: str


class PostingOut(BaseModel):
    """Internal: the ledger's record of one posting, committed or rejected for good."""

    id: str
    transaction_id: str
    kind: str
    step: str
    status: Literal["committed", "rejected"]
    code: str | None
    amount: int
    currency: str
    debit_account_id: str
    credit_account_id: str
    posted_at: str
    created_at: str | None
    balances: dict[str, int]
    duplicate: bool


class AccountDescription(BaseModel):
    """Internal: any account, system ones included (their shards summed)."""

    id: str
    owner_id: str
    currency: str
    kind: str
    balance: int
