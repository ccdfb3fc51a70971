"""What identity's routes answer, as OpenAPI documents it (docs/api.md names the fields)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str


class TokenOut(BaseModel):
    """RFC 6749 section 5.1 (errors are RFC 6749 section 5.2, not problem+json)."""

    access_token: str
    token_type: str = Field(description="Always `Bearer`.")
    expires_in: int
    scope: str
    refresh_token: str | None = Field(default=None, description="Password and refresh grants.")


class Revoked(BaseModel):
    """RFC 7009: an empty 200, whether the token was known or not."""


class OAuthErrorOut(BaseModel):
    error: str
    error_description: str


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


class Discovery(BaseModel):
    """OpenID Provider metadata (RFC 8414); every field the document carries."""

    model_config = ConfigDict(extra="allow")

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    scopes_supported: list[str]


class Revocations(BaseModel):
    revoked: dict[str, int] = Field(description="Revoked token ids and when each expires.")


class RevocationStatus(BaseModel):
    revoked: bool


class RotatedKeys(BaseModel):
    active_kid: str
    published_kids: list[str]
