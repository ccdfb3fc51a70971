"""Versioned events transactions publishes.

Dapr's outbox publishes every state transaction of a store to one topic, so all
transaction events share `transactions.events.v1`; each carries its own `event_type`
(also the CloudEvent `type`) and a deterministic `event_id` that consumers dedupe on.
"""

from typing import Final

TOPIC: Final = "transactions.events.v1"
# Transfer outcomes again, published by the saga itself with the source account as the
# partition key (the outbox cannot set one), for consumers that need per-account order.
TRANSFERS_TOPIC: Final = "transactions.transfers.v1"
TRANSFER_COMPLETED_V1: Final = "transactions.transfer-completed.v1"
TRANSFER_FAILED_V1: Final = "transactions.transfer-failed.v1"
DEPOSIT_COMPLETED_V1: Final = "transactions.deposit-completed.v1"
DEPOSIT_FAILED_V1: Final = "transactions.deposit-failed.v1"
WITHDRAWAL_COMPLETED_V1: Final = "transactions.withdrawal-completed.v1"
WITHDRAWAL_FAILED_V1: Final = "transactions.withdrawal-failed.v1"

OUTCOME_EVENTS: Final = {
    ("transfer", "completed"): TRANSFER_COMPLETED_V1,
    ("transfer", "failed"): TRANSFER_FAILED_V1,
    ("deposit", "completed"): DEPOSIT_COMPLETED_V1,
    ("deposit", "failed"): DEPOSIT_FAILED_V1,
    ("withdrawal", "completed"): WITHDRAWAL_COMPLETED_V1,
    ("withdrawal", "failed"): WITHDRAWAL_FAILED_V1,
}
