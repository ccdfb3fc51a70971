"""Settings of the identity service."""

from kaya787_kit.settings import ServiceSettings
from pydantic import Field


class IdentitySettings(ServiceSettings):
    app_id: str = "identity"
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600)
    # Brute-force protection, per normalised email (known or not).
    login_free_failures: int = Field(default=5, ge=1)
    login_max_lockout_seconds: int = Field(default=900, ge=1)
    # Secret-store names: signing keys (JSON {kid: PEM}) and service clients (hashed secrets).
    signing_keys_secret: str = "identity-signing-keys"  # noqa: S105 - a name
    clients_secret: str = "identity-clients"  # noqa: S105 - a name
