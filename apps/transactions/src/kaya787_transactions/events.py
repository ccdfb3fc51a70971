"""Versioned events transactions publishes.

Every outcome goes to `transactions.events.v1`, keyed by the customer's account (one
account's events stay in order); each carries its own `event_type` (also the CloudEvent
`type`) and a deterministic `event_id` (also the CloudEvent `id`) that consumers dedupe on.
"""

from typing import Final

TOPIC: Final = "transactions.events.v1"
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
