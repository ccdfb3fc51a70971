"""The versioned domain events analytics consumes: topic names and payload models."""

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, StrictInt

USER_REGISTERED_V1: Final = "identity.user-registered.v1"
ACCOUNT_OPENED_TOPIC: Final = "accounts.account-opened.v1"
# Every transaction outcome comes on one topic (Dapr's outbox: one store, one topic).
TRANSACTION_EVENTS_TOPIC: Final = "transactions.events.v1"

TRANSFER_COMPLETED_V1: Final = "transactions.transfer-completed.v1"
TRANSFER_FAILED_V1: Final = "transactions.transfer-failed.v1"
DEPOSIT_COMPLETED_V1: Final = "transactions.deposit-completed.v1"


class UserRegisteredV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str = Field(min_length=1, max_length=128)


class TransactionOutcomeV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: str = Field(pattern=r"^transactions\.[a-z-]+\.v1$")
    event_id: str = Field(min_length=1, max_length=200)
    transaction_id: str
    amount: StrictInt = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    finished_at: str | None = None
