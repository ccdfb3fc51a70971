"""Events identity publishes: a user registered (through Dapr's outbox, with the user
record), an access token revoked (every app drops it from then on)."""

from __future__ import annotations

from typing import ClassVar, Final

from pydantic import Field

from kaya787_contracts.base import Event, Stamp

USER_REGISTERED: Final = "identity.user-registered.v1"
TOKEN_REVOKED: Final = "identity.token-revoked.v1"  # noqa: S105 - a topic name


class UserRegisteredV1(Event):
    """A user registered. The CloudEvent id is the outbox's own (fresh per delivery)."""

    TOPIC: ClassVar[str] = USER_REGISTERED
    EVENT_TYPES: ClassVar[tuple[str, ...]] = (USER_REGISTERED,)
    VERSION: ClassVar[int] = 1

    user_id: str = Field(min_length=1, max_length=128)
    registered_at: Stamp | None = None


class TokenRevokedV1(Event):
    """An access token revoked before its expiry; keyed by its id (the CloudEvent id is
    `<token_id>:revoked`)."""

    TOPIC: ClassVar[str] = TOKEN_REVOKED
    EVENT_TYPES: ClassVar[tuple[str, ...]] = (TOKEN_REVOKED,)
    VERSION: ClassVar[int] = 1

    token_id: str = Field(min_length=1, max_length=200)
    expires_at: int = Field(ge=0)  # the token's own exp (epoch seconds): after it, moot
