"""Dapr implementations of the authorization-code ports (state store, secret store)."""

from __future__ import annotations

from typing import Any

from kaya787_kit.concurrency import EtagConflict
from kaya787_kit.secrets import DaprSecrets
from kaya787_kit.state import DaprStateStore

from kaya787_identity.adapters import _CachedSecret
from kaya787_identity.pkce import AuthorizationCode, StaffMember


class DaprAuthorizationCodes:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def add(self, code_hash: str, code: AuthorizationCode, ttl_seconds: int) -> None:
        await self._state.save(
            f"authcode:{code_hash}",
            code.to_json(),
            etag=None,
            metadata={"ttlInSeconds": str(max(1, ttl_seconds))},
        )

    async def take(self, code_hash: str) -> AuthorizationCode | None:
        found = await self._state.get(f"authcode:{code_hash}")
        if found is None:
            return None
        try:
            # At its ETag: of two racing exchanges of one code, exactly one deletes it.
            await self._state.delete(f"authcode:{code_hash}", found.etag)
        except EtagConflict:
            return None
        return AuthorizationCode.from_json(found.value)


class DaprStaffRegistry:
    def __init__(self, secrets: DaprSecrets, secret_name: str) -> None:
        self._secret = _CachedSecret(secrets, secret_name)

    async def get(self, email: str) -> StaffMember | None:
        staff: dict[str, dict[str, Any]] = await self._secret.json()
        entry = staff.get(email)
        if entry is None:
            return None
        return StaffMember(
            email=email,
            password_hash=str(entry["password_hash"]),
            scopes=frozenset(entry.get("scopes", [])),
        )
