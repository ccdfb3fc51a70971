"""Settings of the transactions service."""

from kaya787_kit.settings import ServiceSettings


class TransactionsSettings(ServiceSettings):
    app_id: str = "transactions"
