"""Settings of the accounts service."""

from kaya787_kit.settings import ServiceSettings
from pydantic import Field


class AccountsSettings(ServiceSettings):
    app_id: str = "accounts"
    # Partitions of the outbox: postings of different partitions commit in parallel; one
    # customer account's events always go through one partition, in order.
    outbox_partitions: int = Field(default=16, ge=1, le=256)
