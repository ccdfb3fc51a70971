"""Identity use cases against in-memory fakes of identity's own ports."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
import pytest
from kaya787_identity.oauth import status_and_headers
from kaya787_identity.oauth_errors import OAuthError
from kaya787_identity.service import IdentityService
from kaya787_kit.auth import JwksCache, TokenVerifier
from kaya787_kit.errors import Conflict, Invalid
from kaya787_kit.problems import Problem, status_of

from tests.fakes.identity import (
    FakePasswords,
    FakeRefreshTokens,
    FakeRevokedTokens,
    FakeUsers,
    fake_identity,
)
from tests.support import tokens as t


@dataclass
class World:
    service: IdentityService
    users: FakeUsers
    refresh: FakeRefreshTokens
    revoked: FakeRevokedTokens
    passwords: FakePasswords
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
    users, refresh = FakeUsers(), FakeRefreshTokens()
    revoked, passwords = FakeRevokedTokens(), FakePasswords()
    clock = [time.time()]
    service = fake_identity(
        users=users,
        refresh_tokens=refresh,
        revoked=revoked,
        passwords=passwords,
        clock=lambda: clock[0],
    )
    return World(service, users, refresh, revoked, passwords, clock)


PASSWORD = "correct horse battery"


async def test_register_normalises_email_and_emits_one_event(world: World) -> None:
    user = await world.service.register("  Alice@Example.COM ", PASSWORD, None)
    assert user.email == "alice@example.com"
    assert [e.model_dump(mode="json") for e in world.users.events] == [
        {"user_id": user.id, "registered_at": user.created_at}
    ]
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
