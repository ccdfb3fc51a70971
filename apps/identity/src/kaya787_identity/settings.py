"""Settings of the identity service."""

import json

from kaya787_kit.settings import ServiceSettings
from pydantic import Field, field_validator

from kaya787_identity.pkce import parse_public_clients


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
    # Operators (hashed passwords and scopes, e.g. ops:read), for the sign-in page.
    staff_secret: str = "identity-staff"  # noqa: S105 - a name
    # Browser applications of the authorization-code flow (PKCE, no secret): client_id ->
    # exact redirect URIs and the scopes they may ask for. Kubernetes sets its own origins.
    oauth_public_clients: str = Field(
        default=json.dumps(
            {
                "kaya787-ops-console": {
                    "redirect_uris": ["http://127.0.0.1:8090/auth/callback"],
                    "scopes": ["ops:read"],
                },
                "kaya787-dashboard": {
                    "redirect_uris": ["http://127.0.0.1:8080/dashboard"],
                    "scopes": ["analytics:read"],
                },
            }
        )
    )

    @field_validator("oauth_public_clients")
    @classmethod
    def _clients_parse(cls, value: str) -> str:
        try:
            parse_public_clients(value)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"OAUTH_PUBLIC_CLIENTS is not a valid client map: {exc}") from exc
        return value
