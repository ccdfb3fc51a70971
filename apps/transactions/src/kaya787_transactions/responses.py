"""What transactions' routes answer, as OpenAPI documents it (docs/api.md names the fields)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TransactionOut(BaseModel):
    """A deposit, withdrawal or transfer. Transfers carry source/destination, the others
    `account_id`; `failure_reason` only when it failed."""

    id: str
    kind: Literal["deposit", "withdrawal", "transfer"]
    status: Literal["pending", "completed", "failed"]
    amount: int = Field(description="Minor units of `currency`.")
    currency: str
    created_at: str
    finished_at: str | None
    source_account_id: str | None = None
    destination_account_id: str | None = None
    account_id: str | None = None
    failure_reason: str | None = None
