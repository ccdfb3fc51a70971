"""Settings of the transactions service."""

from kaya787_kit.settings import ServiceSettings
from pydantic import Field


class TransactionsSettings(ServiceSettings):
    app_id: str = "transactions"
    accounts_app_id: str = "accounts"
    # The most one deposit, withdrawal or transfer may move, in minor units.
    max_amount: int = Field(default=1_000_000_00, gt=0)
