"""Transaction rules with no I/O: kinds, the state machine, ids, fingerprints, limits."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kaya787_kit.errors import Invalid

PENDING, COMPLETED, FAILED = "pending", "completed", "failed"
FINAL = frozenset({COMPLETED, FAILED})
# Where money comes from and goes to outside the ledger (accounts' system accounts).
PARTNER, PAYOUTS = "partner", "payouts"
# The namespace of transaction ids derived from (owner, Idempotency-Key).
_ID_NAMESPACE = uuid.UUID("6f6b1d0e-7c4e-4c61-9c36-2b8f0a0e7787")


def system_account_id(role: str, currency: str) -> str:
    """Accounts' system account of a role (same rule as accounts)."""
    return f"{role}-{currency.lower()}"


def transaction_id_for(owner_id: str, idempotency_key: str) -> str:
    """One key of one user always names the same transaction: a retry finds it."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{owner_id}\n{idempotency_key}"))


def fingerprint(kind: str, body: dict[str, Any]) -> str:
    """What makes two requests with one Idempotency-Key "the same request"."""
    canonical = json.dumps({"kind": kind, **body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def day_of(moment: str) -> str:
    return datetime.fromisoformat(moment).date().isoformat()


@dataclass(frozen=True)
class DailyUsage:
    """What one user paid in on one day in one currency (the pay-in limit's counter)."""

    total: int = 0
    count: int = 0

    def plus(self, amount: int, limit: int) -> DailyUsage:
        if self.total + amount > limit:
            raise Invalid(
                "daily_limit_exceeded",
                f"Deposits are limited to {limit} minor units a day; {self.total} used today.",
            )
        return DailyUsage(self.total + amount, self.count + 1)


@dataclass(frozen=True)
class Transaction:
    id: str
    kind: str
    owner_id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    status: str
    created_at: str
    finished_at: str | None = None
    failure_reason: str | None = None
    fingerprint: str = ""

    def finish(self, status: str, reason: str | None, now: str) -> Transaction:
        if status not in FINAL:
            raise ValueError(f"not a final status: {status}")
        if self.status in FINAL:
            return self  # a final state is final: retries change nothing
        return replace(self, status=status, failure_reason=reason, finished_at=now)

    def customer_account_id(self) -> str:
        """The customer's side: what a deposit credits, a withdrawal or transfer debits."""
        return self.credit_account_id if self.kind == "deposit" else self.debit_account_id

    def posting_id(self, step: str) -> str:
        return f"{self.id}:{step}"

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }
        if self.kind == "transfer":
            body["source_account_id"] = self.debit_account_id
            body["destination_account_id"] = self.credit_account_id
        else:
            body["account_id"] = self.customer_account_id()
        if self.failure_reason:
            body["failure_reason"] = self.failure_reason
        return body

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transaction:
        fields = {k: data.get(k) for k in cls.__dataclass_fields__}
        fields["fingerprint"] = str(data.get("fingerprint") or "")
        return cls(**fields)  # type: ignore[arg-type]
