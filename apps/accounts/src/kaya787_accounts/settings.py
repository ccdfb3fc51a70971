"""Settings of the accounts service."""

from kaya787_kit.settings import ServiceSettings


class AccountsSettings(ServiceSettings):
    app_id: str = "accounts"
