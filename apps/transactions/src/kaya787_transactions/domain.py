"""Transaction rules with no I/O: kinds, the state machine, request fingerprints."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from kaya787_transactions.events import OUTCOME_EVENTS

PENDING, COMPLETED, FAILED = "pending", "completed", "failed"
FINAL = frozenset({COMPLETED, FAILED})
KINDS = ("deposit", "withdrawal", "transfer")


class TransactionError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def funding_account_id(currency: str) -> str:
    """Accounts' system account behind deposits and withdrawals (same rule as accounts)."""
    return f"funding-{currency.lower()}"


def fingerprint(kind: str, body: dict[str, Any]) -> str:
    """What makes two requests with one Idempotency-Key "the same request"."""
    canonical = json.dumps({"kind": kind, **body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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

    def finish(self, status: str, reason: str | None, now: str) -> Transaction:
        if status not in FINAL:
            raise ValueError(f"not a final status: {status}")
        if self.status in FINAL:
            return self  # a final state is final: retries change nothing
        return replace(self, status=status, failure_reason=reason, finished_at=now)

    def customer_account_id(self) -> str:
        """The customer's side: what a deposit credits, a withdrawal or transfer debits."""
        return self.credit_account_id if self.kind == "deposit" else self.debit_account_id

    def event(self) -> dict[str, Any]:
        event_type = OUTCOME_EVENTS[(self.kind, self.status)]
        return {
            "event_type": event_type,
            "event_id": f"{self.id}:{self.status}",
            "transaction_id": self.id,
            "kind": self.kind,
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "debit_account_id": self.debit_account_id,
            "credit_account_id": self.credit_account_id,
            "failure_reason": self.failure_reason,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }

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
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]
