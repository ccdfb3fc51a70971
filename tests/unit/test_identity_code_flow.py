"""Identity's authorization-code flow with PKCE, on fakes of its own ports: what a code
buys, once, and every refusal (RFC 6749 §4.1, RFC 7636)."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass

import jwt
import pytest
from kaya787_identity.code_flow import CodeFlow, RedirectError, UntrustedRedirect
from kaya787_identity.oauth import status_and_headers
from kaya787_identity.oauth_errors import OAuthError
from kaya787_identity.pkce import (
    PublicClient,
    s256,
    verifier_matches,
)
from kaya787_identity.service import IdentityService

from tests.fakes.identity import (
    FakeCodes,
    FakeStaff,
    fake_identity,
)

CONSOLE = PublicClient(
    "kaya787-ops-console",
    frozenset({"http://127.0.0.1:8090/auth/callback"}),
    frozenset({"ops:read"}),
)
DASHBOARD = PublicClient(
    "kaya787-dashboard",
    frozenset({"http://127.0.0.1:8080/dashboard"}),
    frozenset({"analytics:read"}),
)
STAFF_EMAIL = "ops@kaya787.dev"
STAFF_PASSWORD = "a long staff password"
USER_PASSWORD = "correct horse battery"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B


@dataclass
class World:
    flow: CodeFlow
    identity: IdentityService
    codes: FakeCodes
    clock: list[float]


@pytest.fixture
def world() -> World:
    clock = [time.time()]
    identity = fake_identity(
        staff=FakeStaff(
            STAFF_EMAIL, STAFF_PASSWORD, frozenset({"ops:read", "analytics:read", "profile"})
        ),
        clock=lambda: clock[0],
    )
    codes = FakeCodes()
    flow = CodeFlow(
        identity=identity,
        codes=codes,
        clients={c.client_id: c for c in (CONSOLE, DASHBOARD)},
        clock=lambda: clock[0],
    )
    return World(flow, identity, codes, clock)


def _params(
    client: PublicClient = CONSOLE, changes: dict[str, str] | None = None
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": next(iter(client.redirect_uris)),
        "scope": " ".join(client.scopes),
        "state": "s-123",
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
    }
    params.update(changes or {})
    return params


def test_s256_matches_rfc_7636_appendix_b() -> None:
    assert s256(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert verifier_matches(VERIFIER, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not verifier_matches(VERIFIER[:-1] + "x", s256(VERIFIER))
    assert not verifier_matches("short", s256("short"))  # under 43 characters
    digest = hashlib.sha256(VERIFIER.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == s256(VERIFIER)


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": "nobody"},
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": "http://127.0.0.1:8090/auth/callback/"},
        {"redirect_uri": ""},
    ],
)
def test_an_untrusted_client_or_redirect_is_never_redirected_to(
    world: World, changes: dict[str, str]
) -> None:
    with pytest.raises(UntrustedRedirect):
        world.flow.check(_params(changes=changes))


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"scope": "ops:read identity:admin"}, "invalid_scope"),
        ({"state": "x" * 600}, "invalid_request"),
    ],
)
def test_a_bad_request_goes_back_to_the_client_with_its_error(
    world: World, changes: dict[str, str], error: str
) -> None:
    with pytest.raises(RedirectError) as refused:
        world.flow.check(_params(changes=changes))
    assert refused.value.error == error
    assert refused.value.redirect_uri == "http://127.0.0.1:8090/auth/callback"


async def test_a_staff_code_buys_one_ops_token(world: World) -> None:
    request = world.flow.check(_params())
    code = await world.flow.sign_in(request, STAFF_EMAIL, STAFF_PASSWORD)
    body = await world.flow.exchange(
        code, "http://127.0.0.1:8090/auth/callback", "kaya787-ops-console", VERIFIER
    )
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == f"staff:{STAFF_EMAIL}"
    assert claims["scope"] == "ops:read"
    assert claims["client_id"] == "kaya787-ops-console"
    assert "refresh_token" in body
    with pytest.raises(OAuthError) as replay:
        await world.flow.exchange(
            code, "http://127.0.0.1:8090/auth/callback", "kaya787-ops-console", VERIFIER
        )
    assert replay.value.error == "invalid_grant"


async def test_a_tampered_verifier_burns_the_code(world: World) -> None:
    code = await world.flow.sign_in(world.flow.check(_params()), STAFF_EMAIL, STAFF_PASSWORD)
    redirect = "http://127.0.0.1:8090/auth/callback"
    with pytest.raises(OAuthError) as tampered:
        await world.flow.exchange(code, redirect, CONSOLE.client_id, VERIFIER[:-1] + "A")
    assert tampered.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        await world.flow.exchange(code, redirect, CONSOLE.client_id, VERIFIER)


@pytest.mark.parametrize(
    ("redirect", "client_id"),
    [
        ("http://127.0.0.1:8080/dashboard", "kaya787-ops-console"),
        ("http://127.0.0.1:8090/auth/callback", "kaya787-dashboard"),
    ],
)
async def test_a_code_is_bound_to_its_client_and_redirect(
    world: World, redirect: str, client_id: str
) -> None:
    code = await world.flow.sign_in(world.flow.check(_params()), STAFF_EMAIL, STAFF_PASSWORD)
    with pytest.raises(OAuthError):
        await world.flow.exchange(code, redirect, client_id, VERIFIER)


async def test_a_code_expires_after_a_minute(world: World) -> None:
    code = await world.flow.sign_in(world.flow.check(_params()), STAFF_EMAIL, STAFF_PASSWORD)
    world.clock[0] += 61
    with pytest.raises(OAuthError):
        await world.flow.exchange(
            code, "http://127.0.0.1:8090/auth/callback", CONSOLE.client_id, VERIFIER
        )


async def test_wrong_password_and_lockout_apply_to_the_sign_in_page(world: World) -> None:
    request = world.flow.check(_params())
    for _ in range(3):
        with pytest.raises(OAuthError) as wrong:
            await world.flow.sign_in(request, STAFF_EMAIL, "not it at all")
        assert wrong.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        await world.flow.sign_in(request, STAFF_EMAIL, "not it at all")
    with pytest.raises(OAuthError) as locked:
        await world.flow.sign_in(request, STAFF_EMAIL, STAFF_PASSWORD)
    assert status_and_headers(locked.value)[0] == 429
    assert world.codes.stored == {}


async def test_a_customer_may_sign_in_to_neither_the_dashboard_nor_the_console(
    world: World,
) -> None:
    await world.identity.register("ada@example.com", USER_PASSWORD, None)
    for client in (None, DASHBOARD):
        params = _params() if client is None else _params(client)
        with pytest.raises(RedirectError) as denied:
            await world.flow.sign_in(world.flow.check(params), "ada@example.com", USER_PASSWORD)
        assert denied.value.error == "access_denied"
    # Staff may: the dashboard's platform-wide figures are theirs.
    code = await world.flow.sign_in(
        world.flow.check(_params(DASHBOARD)), STAFF_EMAIL, STAFF_PASSWORD
    )
    body = await world.flow.exchange(
        code, "http://127.0.0.1:8080/dashboard", DASHBOARD.client_id, VERIFIER
    )
    assert body["scope"] == "analytics:read"


async def test_the_password_grant_stays_for_users_only(world: World) -> None:
    with pytest.raises(OAuthError):
        await world.identity.password_grant(STAFF_EMAIL, STAFF_PASSWORD, None)
