"""Settings of the transactions service."""

from kaya787_kit.settings import ServiceSettings
from pydantic import Field


class TransactionsSettings(ServiceSettings):
    app_id: str = "transactions"
    accounts_app_id: str = "accounts"
    partner_app_id: str = "partner"
    # The most one deposit, withdrawal or transfer may move, in major units of its
    # currency (scaled by the ISO 4217 exponent: 10^6 USD, 10^6 JPY, 10^6 BHD).
    max_amount_major: int = Field(default=1_000_000, gt=0)
    # What one user may pay in per day and currency, in major units.
    daily_payin_major: int = Field(default=100_000, gt=0)
    # A transaction still pending after this long is the reconciler's to drive to an end.
    reconcile_after_seconds: float = Field(default=300.0, gt=0)
    reconcile_every_seconds: float = Field(default=30.0, gt=0)
    # A call to the ledger ends within this, so that a hung accounts becomes our own 503
    # (ledger_unconfirmed) before the edge gives up on the whole request: the gateway's
    # sidecar allows an app 5 s (dapr/resiliency/edge.yaml).
    ledger_timeout_seconds: float = Field(default=3.0, gt=0)
    # The breaker on accounts (kaya787_kit.circuit_breaker): this many failures in a row
    # (no answer, or a 5xx) within the window open it; after the cool-down one trial call
    # goes through, and its success closes it.
    ledger_breaker_failures: int = Field(default=5, ge=1)
    ledger_breaker_window_seconds: float = Field(default=30.0, gt=0)
    ledger_breaker_cooldown_seconds: float = Field(default=5.0, gt=0)
