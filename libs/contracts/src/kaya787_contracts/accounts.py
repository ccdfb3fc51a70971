"""Events the ledger (accounts) publishes, all through its own outbox.

`accounts.postings.v1` carries every posting's outcome (`accounts.posting-committed.v1` or
`accounts.posting-rejected.v1`), keyed by the customer's account so that one account's
events stay in order; the CloudEvent id is the posting id, which consumers dedupe on.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal

from pydantic import Field, StrictInt

from kaya787_contracts.base import MAX_SAFE_INTEGER, Event, Stamp

ACCOUNT_OPENED: Final = "accounts.account-opened.v1"
POSTINGS: Final = "accounts.postings.v1"
POSTING_COMMITTED: Final = "accounts.posting-committed.v1"
POSTING_REJECTED: Final = "accounts.posting-rejected.v1"

PostingStatus = Literal["committed", "rejected"]

_CURRENCY = r"^[A-Z]{3}$"


class AccountOpenedV1(Event):
    """A customer's account opened; the CloudEvent id is `<account_id>:opened`."""

    TOPIC: ClassVar[str] = ACCOUNT_OPENED
    EVENT_TYPES: ClassVar[tuple[str, ...]] = (ACCOUNT_OPENED,)
    VERSION: ClassVar[int] = 1

    event_type: Literal["accounts.account-opened.v1"] = ACCOUNT_OPENED
    event_id: str = Field(min_length=1, max_length=200)
    account_id: str = Field(min_length=1, max_length=128)
    owner_id: str | None = None
    currency: str = Field(pattern=_CURRENCY)
    opened_at: Stamp | None = None


class PostingV1(Event):
    """What one posting did (committed, or rejected by the balance). `id`, `event_id` and
    `posting_id` are all the posting id (consumers dedupe on `event_id`)."""

    TOPIC: ClassVar[str] = POSTINGS
    EVENT_TYPES: ClassVar[tuple[str, ...]] = (POSTING_COMMITTED, POSTING_REJECTED)
    VERSION: ClassVar[int] = 1

    event_type: Literal["accounts.posting-committed.v1", "accounts.posting-rejected.v1"]
    event_id: str = Field(min_length=1, max_length=200)
    id: str | None = None
    transaction_id: str = Field(min_length=1, max_length=100)
    kind: str = Field(max_length=20)
    step: str = Field(max_length=20)
    status: PostingStatus
    code: str | None = None  # why a rejected posting was rejected
    amount: StrictInt = Field(gt=0, le=MAX_SAFE_INTEGER)
    currency: str = Field(pattern=_CURRENCY)
    debit_account_id: str | None = None
    credit_account_id: str | None = None
    # created_at (the transaction accepted) -> posted_at is the transaction's latency.
    posted_at: Stamp | None = None
    created_at: Stamp | None = None
    balances: dict[str, int] = Field(default_factory=dict)  # user accounts' balance after
    posting_id: str | None = None


_POSTING_TYPES: Final = {"committed": POSTING_COMMITTED, "rejected": POSTING_REJECTED}


def posting_event_type(status: str) -> str:
    """The CloudEvent type of a posting with this status; KeyError for any other status."""
    return _POSTING_TYPES[status]
