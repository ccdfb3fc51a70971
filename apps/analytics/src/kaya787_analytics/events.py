"""The versioned domain events analytics consumes: topic names and payload models."""

from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

USER_REGISTERED_V1: Final = "identity.user-registered.v1"
ACCOUNT_OPENED_TOPIC: Final = "accounts.account-opened.v1"
# Every transaction outcome comes on one topic, keyed by the customer's account.
TRANSACTION_EVENTS_TOPIC: Final = "transactions.events.v1"
DOMAIN_TOPICS: Final = (USER_REGISTERED_V1, ACCOUNT_OPENED_TOPIC, TRANSACTION_EVENTS_TOPIC)

TRANSFER_COMPLETED_V1: Final = "transactions.transfer-completed.v1"
TRANSFER_FAILED_V1: Final = "transactions.transfer-failed.v1"
DEPOSIT_COMPLETED_V1: Final = "transactions.deposit-completed.v1"


class UserRegisteredV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: str = Field(min_length=1, max_length=128)
    registered_at: AwareDatetime | None = None


class AccountOpenedV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(min_length=1, max_length=200)
    account_id: str = Field(min_length=1, max_length=128)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    opened_at: AwareDatetime | None = None


class TransactionOutcomeV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: str = Field(pattern=r"^transactions\.[a-z-]+\.v1$")
    event_id: str = Field(min_length=1, max_length=200)
    transaction_id: str
    amount: StrictInt = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    # created_at -> finished_at is the completion latency; a bad stamp is a poison event.
    created_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
