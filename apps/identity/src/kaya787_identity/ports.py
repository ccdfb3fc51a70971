"""What the identity use cases need from the outside world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kaya787_contracts.identity import UserRegisteredV1
from kaya787_kit.concurrency import Versioned

from kaya787_identity.domain import KeyRing, LoginFailures, RefreshToken, User


class EmailTaken(Exception):
    pass


@dataclass(frozen=True)
class ServiceClient:
    client_id: str
    secret_hash: str
    scopes: frozenset[str]


class UserRepository(Protocol):
    async def create(self, user: User, event: UserRegisteredV1) -> None:
        """Store the user and publish `event` with it; raises EmailTaken."""
        ...

    async def by_email(self, email: str) -> User | None: ...

    async def by_id(self, user_id: str) -> User | None: ...


class LoginFailureStore(Protocol):
    async def load(self, email_key: str) -> tuple[LoginFailures, str | None]: ...

    async def save(self, email_key: str, failures: LoginFailures, etag: str | None) -> None: ...

    async def clear(self, email_key: str) -> None: ...


class RefreshTokenStore(Protocol):
    async def get(self, token_hash: str) -> Versioned[RefreshToken] | None: ...

    async def add(self, token_hash: str, token: RefreshToken, ttl_seconds: int) -> None: ...

    async def consume(self, token_hash: str, token: RefreshToken, etag: str) -> None:
        """Mark used if still at `etag`; raises EtagConflict when someone used it first."""
        ...

    async def family_revoked(self, family_id: str) -> bool: ...

    async def revoke_family(self, family_id: str, ttl_seconds: int) -> None: ...


class RevokedTokens(Protocol):
    async def revoke(self, token_id: str, ttl_seconds: int) -> None:
        """Record the revocation (and tell the other apps)."""
        ...

    async def is_revoked(self, token_id: str) -> bool: ...

    async def active(self) -> dict[str, int]:
        """Revoked token ids that have not expired yet, with their expiry (epoch s)."""
        ...


class SigningKeys(Protocol):
    async def available(self) -> dict[str, Any]:
        """Private keys by kid, in the secret store's order."""
        ...

    async def ring(self) -> tuple[KeyRing | None, str | None]: ...

    async def save_ring(self, ring: KeyRing, etag: str | None) -> None: ...


class ClientRegistry(Protocol):
    async def get(self, client_id: str) -> ServiceClient | None: ...


class PasswordHashing(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    async def verify_nothing(self, password: str) -> None:
        """Spend the time a real verification takes, for unknown accounts."""
        ...
