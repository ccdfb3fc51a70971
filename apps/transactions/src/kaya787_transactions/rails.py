"""The steps of the rail sagas (pay-ins and payouts), behind the app's ports.

workflow.py only orders these steps as Dapr Workflow activities; every step here is
idempotent, so a replayed or restarted saga repeats them without effect:
- postings are applied once per (transaction, step) by the ledger, forever;
- the partner answers the same for the same transaction id;
- finishing a final transaction changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from kaya787_kit.concurrency import retry_on_conflict
from kaya787_kit.errors import AppError

from kaya787_transactions.domain import FINAL, PARTNER, PAYOUTS, Transaction, system_account_id
from kaya787_transactions.ports import (
    Ledger,
    Partner,
    PartnerOutcome,
    PostingOutcome,
    RefundAlarm,
    TransactionStore,
)

_log = logging.getLogger("kaya787.transactions.rails")

# Steps of each kind, as the ledger knows them.
DEPOSIT = "deposit"
HOLD, SETTLE, REFUND = "hold", "settle", "refund"


class MissingRecord(RuntimeError):
    """The saga runs for a transaction whose record is not there (retried)."""


@dataclass(frozen=True)
class Finished:
    status: str
    changed: bool  # False when an earlier attempt had finished it already


class RailSteps:
    def __init__(
        self,
        *,
        store: TransactionStore,
        ledger: Ledger,
        partner: Partner,
        on_refund_refused: RefundAlarm | None = None,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._partner = partner
        self._alarm = on_refund_refused

    async def load(self, transaction_id: str) -> Transaction:
        found = await self._store.get(transaction_id)
        if found is None:
            raise MissingRecord(transaction_id)
        return found.value

    async def post(self, transaction: Transaction, step: str) -> PostingOutcome:
        """The ledger leg of a step; a refusal of the request itself is a rejection too."""
        debit, credit = _legs(transaction, step)
        try:
            return await self._ledger.post(transaction, step, debit, credit, authorised_by=None)
        except AppError as exc:  # the ledger refused the request itself
            return PostingOutcome(committed=False, code=exc.code)

    async def collect(self, transaction: Transaction) -> PartnerOutcome:
        return await self._partner.collect(transaction)

    async def pay_out(self, transaction: Transaction) -> PartnerOutcome:
        return await self._partner.pay_out(transaction)

    async def refund_refused(self, transaction: Transaction, code: str | None) -> None:
        """A payout failed and its refund was refused: money is stuck; say so loudly."""
        _log.error(
            "refund refused: the customer's money is held",
            extra={"transaction_id": transaction.id, "code": code},
        )
        if self._alarm is not None:
            self._alarm.refund_refused(transaction)

    async def finish(self, transaction_id: str, status: str, reason: str | None) -> Finished:
        async def attempt() -> Finished:
            found = await self._store.get(transaction_id)
            if found is None:
                raise MissingRecord(transaction_id)
            current, etag = found.value, found.etag
            if current.status in FINAL:
                return Finished(current.status, changed=False)
            done = current.finish(status, reason, datetime.now(UTC).isoformat())
            await self._store.finish(done, etag)
            return Finished(done.status, changed=True)

        return await retry_on_conflict(attempt, attempts=16)


def _legs(transaction: Transaction, step: str) -> tuple[str, str]:
    """(debited, credited) account of a step: the money's path through the ledger."""
    partner = system_account_id(PARTNER, transaction.currency)
    payouts = system_account_id(PAYOUTS, transaction.currency)
    customer = transaction.customer_account_id()
    return {
        DEPOSIT: (partner, customer),
        HOLD: (customer, payouts),
        SETTLE: (payouts, partner),
        REFUND: (payouts, customer),
    }[step]
