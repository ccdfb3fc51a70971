"""Fakes of identity's own ports (never of Dapr): users, login failures, refresh tokens,
revocations, signing keys, clients, passwords, authorization codes and staff."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kaya787_contracts.identity import UserRegisteredV1
from kaya787_identity.domain import KeyRing, LoginFailures, RefreshToken, User
from kaya787_identity.pkce import AuthorizationCode, StaffMember
from kaya787_identity.ports import EmailTaken, ServiceClient
from kaya787_identity.service import IdentityService, TokenPolicy
from kaya787_kit import concurrency
from kaya787_kit.concurrency import EtagConflict

from tests.support import tokens as t


class FakeUsers:
    """Users by email; `events` holds what each registration published."""

    def __init__(self) -> None:
        self.by_mail: dict[str, User] = {}
        self.events: list[UserRegisteredV1] = []

    async def create(self, user: User, event: UserRegisteredV1) -> None:
        if user.email in self.by_mail:
            raise EmailTaken
        self.by_mail[user.email] = user
        self.events.append(event)

    async def by_email(self, email: str) -> User | None:
        return self.by_mail.get(email)

    async def by_id(self, user_id: str) -> User | None:
        return next((u for u in self.by_mail.values() if u.id == user_id), None)


@dataclass
class _VersionedDict:
    items: dict[str, tuple[Any, int]] = field(default_factory=dict)

    def load(self, key: str) -> tuple[Any, str | None]:
        value, version = self.items.get(key, (None, 0))
        return value, (str(version) if version else None)

    def store(self, key: str, value: Any, etag: str | None) -> None:
        _, version = self.items.get(key, (None, 0))
        if etag != (str(version) if version else None):
            raise EtagConflict(key)
        self.items[key] = (value, version + 1)


class FakeLoginFailures(_VersionedDict):
    async def load(self, email_key: str) -> tuple[LoginFailures, str | None]:  # type: ignore[override]
        value, etag = _VersionedDict.load(self, email_key)
        return (value or LoginFailures()), etag

    async def save(self, email_key: str, failures: LoginFailures, etag: str | None) -> None:
        self.store(email_key, failures, etag)

    async def clear(self, email_key: str) -> None:
        self.items.pop(email_key, None)


class FakeRefreshTokens(_VersionedDict):
    revoked_families: set[str]

    def __init__(self) -> None:
        super().__init__()
        self.revoked_families = set()

    async def get(self, token_hash: str) -> concurrency.Versioned[RefreshToken] | None:
        value, etag = self.load(token_hash)
        return None if value is None or etag is None else concurrency.Versioned(value, etag)

    async def add(self, token_hash: str, token: RefreshToken, ttl_seconds: int) -> None:
        self.store(token_hash, token, None)

    async def consume(self, token_hash: str, token: RefreshToken, etag: str) -> None:
        self.store(token_hash, RefreshToken(**{**token.__dict__, "used": True}), etag)

    async def family_revoked(self, family_id: str) -> bool:
        return family_id in self.revoked_families

    async def revoke_family(self, family_id: str, ttl_seconds: int) -> None:
        self.revoked_families.add(family_id)


class FakeRevokedTokens:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def revoke(self, token_id: str, ttl_seconds: int) -> None:
        self.ids.add(token_id)

    async def is_revoked(self, token_id: str) -> bool:
        return token_id in self.ids

    async def active(self) -> dict[str, int]:
        return dict.fromkeys(self.ids, 2**31)


class FakeSigningKeys(_VersionedDict):
    def __init__(self) -> None:
        super().__init__()
        self.keys = {"k1": t.new_key(), "k2": t.new_key(), "k3": t.new_key()}

    async def available(self) -> dict[str, Any]:
        return dict(self.keys)

    async def ring(self) -> tuple[KeyRing | None, str | None]:
        return self.load("ring")

    async def save_ring(self, ring: KeyRing, etag: str | None) -> None:
        self.store("ring", ring, etag)


class FakeClients:
    """One service client, "ops" (secret "ops-secret", scope identity:admin)."""

    async def get(self, client_id: str) -> ServiceClient | None:
        if client_id != "ops":
            return None
        return ServiceClient("ops", "hash:ops-secret", frozenset({"identity:admin"}))


class FakePasswords:
    """Our own port, faked: 'hash:<password>'."""

    def __init__(self) -> None:
        self.dummy_checks = 0

    async def hash(self, password: str) -> str:
        return "hash:" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "hash:" + password

    async def verify_nothing(self, password: str) -> None:
        self.dummy_checks += 1


class FakeCodes:
    def __init__(self) -> None:
        self.stored: dict[str, AuthorizationCode] = {}

    async def add(self, code_hash: str, code: AuthorizationCode, ttl_seconds: int) -> None:
        self.stored[code_hash] = code

    async def take(self, code_hash: str) -> AuthorizationCode | None:
        return self.stored.pop(code_hash, None)


class FakeStaff:
    """One staff member, hashed the way FakePasswords hashes."""

    def __init__(self, email: str, password: str, scopes: frozenset[str]) -> None:
        self._member = StaffMember(email, "hash:" + password, scopes)

    async def get(self, email: str) -> StaffMember | None:
        return self._member if email == self._member.email else None


def fake_identity(
    *,
    users: FakeUsers | None = None,
    refresh_tokens: FakeRefreshTokens | None = None,
    revoked: FakeRevokedTokens | None = None,
    passwords: FakePasswords | None = None,
    staff: FakeStaff | None = None,
    clock: Callable[[], float] = time.time,
) -> IdentityService:
    """Identity's use cases over fresh fakes; pass the fakes a test looks into. Tokens live
    15 min, refresh tokens an hour; 3 free failed logins, then at most 60 s locked out."""
    return IdentityService(
        users=FakeUsers() if users is None else users,
        failures=FakeLoginFailures(),
        refresh_tokens=FakeRefreshTokens() if refresh_tokens is None else refresh_tokens,
        revoked=FakeRevokedTokens() if revoked is None else revoked,
        keys=FakeSigningKeys(),
        clients=FakeClients(),
        passwords=FakePasswords() if passwords is None else passwords,
        policy=TokenPolicy(t.ISSUER, t.AUDIENCE, 900, 3600, 3, 60),
        staff=staff,
        clock=clock,
    )
