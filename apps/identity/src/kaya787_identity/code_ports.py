"""What the authorization-code flow needs from the outside world."""

from __future__ import annotations

from typing import Protocol

from kaya787_identity.pkce import AuthorizationCode, StaffMember


class AuthorizationCodes(Protocol):
    async def add(self, code_hash: str, code: AuthorizationCode, ttl_seconds: int) -> None: ...

    async def take(self, code_hash: str) -> AuthorizationCode | None:
        """Remove and return the code: a second take of the same code finds nothing."""
        ...


class StaffRegistry(Protocol):
    async def get(self, email: str) -> StaffMember | None: ...
