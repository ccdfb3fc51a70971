"""Identity use cases against in-memory fakes of identity's own ports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from kaya787_identity.domain import KeyRing, LoginFailures, RefreshToken, User
from kaya787_identity.oauth import status_and_headers
from kaya787_identity.oauth_errors import OAuthError
from kaya787_identity.ports import EmailTaken, ServiceClient
from kaya787_identity.service import IdentityService, TokenPolicy
from kaya787_kit import concurrency
from kaya787_kit.auth import JwksCache, TokenVerifier
from kaya787_kit.errors import Conflict, Invalid
from kaya787_kit.problems import Problem, status_of
from kaya787_kit.state import EtagConflict

from tests.support import tokens as t


class Users:
    def __init__(self) -> None:
        self.by_mail: dict[str, User] = {}
        self.events: list[dict[str, Any]] = []

    async def create(self, user: User, event: dict[str, Any]) -> None:
        if user.email in self.by_mail:
            raise EmailTaken
        self.by_mail[user.email] = user
        self.events.append(event)

    async def by_email(self, email: str) -> User | None:
        return self.by_mail.get(email)

    async def by_id(self, user_id: str) -> User | None:
        return next((u for u in self.by_mail.values() if u.id == user_id), None)


@dataclass
class Versioned:
    items: dict[str, tuple[Any, int]] = field(default_factory=dict)

    def load(self, key: str) -> tuple[Any, str | None]:
        value, version = self.items.get(key, (None, 0))
        return value, (str(version) if version else None)

    def store(self, key: str, value: Any, etag: str | None) -> None:
        _, version = self.items.get(key, (None, 0))
        if etag != (str(version) if version else None):
            raise EtagConflict(key)
        self.items[key] = (value, version + 1)


class Failures(Versioned):
    async def load(self, email_key: str) -> tuple[LoginFailures, str | None]:  # type: ignore[override]
        value, etag = Versioned.load(self, email_key)
        return (value or LoginFailures()), etag

    async def save(self, email_key: str, failures: LoginFailures, etag: str | None) -> None:
        self.store(email_key, failures, etag)

    async def clear(self, email_key: str) -> None:
        self.items.pop(email_key, None)


class Refresh(Versioned):
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


class Revoked:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def revoke(self, token_id: str, ttl_seconds: int) -> None:
        self.ids.add(token_id)

    async def is_revoked(self, token_id: str) -> bool:
        return token_id in self.ids

    async def active(self) -> dict[str, int]:
        return dict.fromkeys(self.ids, 2**31)


class Keys(Versioned):
    def __init__(self) -> None:
        super().__init__()
        self.keys = {"k1": t.new_key(), "k2": t.new_key(), "k3": t.new_key()}

    async def available(self) -> dict[str, Any]:
        return dict(self.keys)

    async def ring(self) -> tuple[KeyRing | None, str | None]:
        return self.load("ring")

    async def save_ring(self, ring: KeyRing, etag: str | None) -> None:
        self.store("ring", ring, etag)


class Clients:
    async def get(self, client_id: str) -> ServiceClient | None:
        if client_id != "ops":
            return None
        return ServiceClient("ops", "hash:ops-secret", frozenset({"identity:admin"}))


class Passwords:
    """Our own port, faked: 'hash:<password>'."""

    def __init__(self) -> None:
        self.dummy_checks = 0

    async def hash(self, password: str) -> str:
        return "hash:" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "hash:" + password

    async def verify_nothing(self, password: str) -> None:
        self.dummy_checks += 1


@dataclass
class World:
    service: IdentityService
    users: Users
    refresh: Refresh
    revoked: Revoked
    passwords: Passwords
    clock: list[float]

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(
            JwksCache(self.service.jwks),
            issuer=t.ISSUER,
            audience=t.AUDIENCE,
            revocations=self.revoked,
        )


@pytest.fixture
def world() -> World:
    users, refresh, revoked, passwords = Users(), Refresh(), Revoked(), Passwords()
    clock = [time.time()]
    service = IdentityService(
        users=users,
        failures=Failures(),
        refresh_tokens=refresh,
        revoked=revoked,
        keys=Keys(),
        clients=Clients(),
        passwords=passwords,
        policy=TokenPolicy(
            issuer=t.ISSUER,
            audience=t.AUDIENCE,
            access_ttl=900,
            refresh_ttl=3600,
            free_failures=3,
            max_lockout=60,
        ),
        clock=lambda: clock[0],
    )
    return World(service, users, refresh, revoked, passwords, clock)


PASSWORD = "correct horse battery"


async def test_register_normalises_email_and_emits_one_event(world: World) -> None:
    user = await world.service.register("  Alice@Example.COM ", PASSWORD, None)
    assert user.email == "alice@example.com"
    assert world.users.events == [{"user_id": user.id, "registered_at": user.created_at}]
    with pytest.raises(Conflict) as dup:
        await world.service.register("ALICE@example.com", PASSWORD, "x")
    assert status_of(dup.value) == 409
    assert len(world.users.events) == 1


@pytest.mark.parametrize(
    ("email", "password", "code"),
    [
        ("not-an-email", PASSWORD, "invalid_email"),
        ("a@b.example", "short", "invalid_password"),
        ("a@b.example", "x" * 300, "invalid_password"),
    ],
)
async def test_register_rejects_bad_input(
    world: World, email: str, password: str, code: str
) -> None:
    with pytest.raises(Invalid) as bad:
        await world.service.register(email, password, None)
    assert (status_of(bad.value), bad.value.code) == (422, code)


async def test_password_grant_issues_verifiable_tokens(world: World) -> None:
    await world.service.register("bob@example.com", PASSWORD, "Bob")
    body = await world.service.password_grant("BOB@example.com", PASSWORD, None)
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"]
    principal = await world.verifier().verify(body["access_token"])
    assert "profile" in principal.scopes


async def test_unknown_email_and_wrong_password_look_the_same(world: World) -> None:
    await world.service.register("carol@example.com", PASSWORD, None)
    with pytest.raises(OAuthError) as wrong:
        await world.service.password_grant("carol@example.com", "wrong password!", None)
    with pytest.raises(OAuthError) as unknown:
        await world.service.password_grant("nobody@example.com", "wrong password!", None)
    assert wrong.value == unknown.value
    assert world.passwords.dummy_checks == 1  # the unknown path still "verifies"


async def test_repeated_failures_lock_out_known_and_unknown_alike(world: World) -> None:
    await world.service.register("dave@example.com", PASSWORD, None)
    for email in ("dave@example.com", "ghost@example.com"):
        statuses = []
        for _ in range(6):
            try:
                await world.service.password_grant(email, "wrong password!", None)
            except OAuthError as exc:
                statuses.append(status_and_headers(exc)[0])
        assert statuses[:4] == [400, 400, 400, 400]
        assert 429 in statuses[4:]
    # Even the right password waits out the lockout...
    with pytest.raises(OAuthError) as locked:
        await world.service.password_grant("dave@example.com", PASSWORD, None)
    status, headers = status_and_headers(locked.value)
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    # ...and works after it.
    world.clock[0] += 61
    assert (await world.service.password_grant("dave@example.com", PASSWORD, None))["access_token"]


async def test_refresh_rotates_and_reuse_burns_the_family(world: World) -> None:
    await world.service.register("erin@example.com", PASSWORD, None)
    first = await world.service.password_grant("erin@example.com", PASSWORD, None)
    second = await world.service.refresh_grant(first["refresh_token"], None)
    assert second["refresh_token"] != first["refresh_token"]
    with pytest.raises(OAuthError) as reused:
        await world.service.refresh_grant(first["refresh_token"], None)
    assert reused.value.error == "invalid_grant"
    # The whole family is gone: the legitimate newer token stops working too.
    with pytest.raises(OAuthError):
        await world.service.refresh_grant(second["refresh_token"], None)


async def test_refresh_cannot_widen_scope(world: World) -> None:
    await world.service.register("fay@example.com", PASSWORD, None)
    first = await world.service.password_grant("fay@example.com", PASSWORD, "profile")
    with pytest.raises(OAuthError) as wider:
        await world.service.refresh_grant(first["refresh_token"], "profile accounts")
    assert wider.value.error == "invalid_scope"


async def test_client_credentials_needs_the_right_secret(world: World) -> None:
    body = await world.service.client_credentials_grant("ops", "ops-secret", None)
    assert body["scope"] == "identity:admin"
    assert "refresh_token" not in body
    for client_id, secret in (("ops", "wrong"), ("nobody", "ops-secret"), ("", "")):
        with pytest.raises(OAuthError) as bad:
            await world.service.client_credentials_grant(client_id, secret, None)
        assert (bad.value.error, status_and_headers(bad.value)[0]) == ("invalid_client", 401)


async def test_revoked_access_token_is_refused(world: World) -> None:
    await world.service.register("gus@example.com", PASSWORD, None)
    body = await world.service.password_grant("gus@example.com", PASSWORD, None)
    verifier = world.verifier()
    await verifier.verify(body["access_token"])
    await world.service.revoke(body["access_token"])
    with pytest.raises(Problem) as refused:
        await verifier.verify(body["access_token"])
    assert refused.value.status == 401
    await world.service.revoke("not-a-token-at-all")  # RFC 7009: no error for unknowns


async def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_kid(world: World) -> None:
    await world.service.register("hal@example.com", PASSWORD, None)
    old = (await world.service.password_grant("hal@example.com", PASSWORD, None))["access_token"]
    old_kid = jwt.get_unverified_header(old)["kid"]
    before = {k["kid"] for k in (await world.service.jwks())["keys"]}
    rotated = await world.service.rotate_signing_key()
    assert rotated["active_kid"] != old_kid
    assert rotated["active_kid"] in before  # it was published before it signed anything
    new = (await world.service.password_grant("hal@example.com", PASSWORD, None))["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == rotated["active_kid"]
    verifier = world.verifier()
    await verifier.verify(old)
    await verifier.verify(new)
    # Once every token of the old key has expired, the old key leaves the JWKS.
    world.clock[0] += 900 + 121
    assert old_kid not in {k["kid"] for k in (await world.service.jwks())["keys"]}
