"""Versioned events accounts publishes (through the Dapr outbox)."""

from typing import Final

ACCOUNT_OPENED_V1: Final = "accounts.account-opened.v1"
