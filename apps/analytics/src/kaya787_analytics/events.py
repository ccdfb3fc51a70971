"""The versioned domain events analytics consumes: topic names and payload models."""

from typing import Final, Literal

from kaya787_kit.money import MAX_SAFE_INTEGER
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

USER_REGISTERED_V1: Final = "identity.user-registered.v1"
ACCOUNT_OPENED_TOPIC: Final = "accounts.account-opened.v1"
# Every posting of the ledger (committed or rejected) comes on one topic, keyed by the
# customer's account; the posting id is the event id.
POSTINGS_TOPIC: Final = "accounts.postings.v1"
DOMAIN_TOPICS: Final = (USER_REGISTERED_V1, ACCOUNT_OPENED_TOPIC, POSTINGS_TOPIC)


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


class PostingV1(BaseModel):
    """accounts.posting-committed.v1 / accounts.posting-rejected.v1."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: str = Field(pattern=r"^accounts\.posting-(committed|rejected)\.v1$")
    event_id: str = Field(min_length=1, max_length=200)
    transaction_id: str = Field(min_length=1, max_length=100)
    kind: str = Field(max_length=20)
    step: str = Field(max_length=20)
    status: Literal["committed", "rejected"]
    amount: StrictInt = Field(gt=0, le=MAX_SAFE_INTEGER)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    # created_at -> posted_at is the transaction's latency; a bad stamp is a poison event.
    created_at: AwareDatetime | None = None
    posted_at: AwareDatetime | None = None
