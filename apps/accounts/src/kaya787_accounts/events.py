"""Versioned events accounts publishes, all through its own outbox (kaya787_kit.outbox).

`accounts.postings.v1` carries every posting's outcome (`accounts.posting-committed.v1` or
`accounts.posting-rejected.v1`), keyed by the customer's account so that one account's
events stay in order; the CloudEvent id is the posting id, which consumers dedupe on.
"""

from typing import Final

ACCOUNT_OPENED_V1: Final = "accounts.account-opened.v1"
POSTINGS_TOPIC: Final = "accounts.postings.v1"
