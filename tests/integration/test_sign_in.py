"""Sign-in for people: identity's authorization-code flow with PKCE (RFC 7636) and the ops
console's session, against the running platform. Every control has its refusal here."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.platform import Platform
from tests.support.signin import (
    CONSOLE,
    GATEWAY,
    Authorization,
    exchange,
    redirect_params,
    sign_in,
    staff_credentials,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def client(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=20.0) as http:
        yield http


def test_discovery_lists_the_authorization_endpoint_and_s256(client: httpx.Client) -> None:
    doc = client.get(f"{GATEWAY}/.well-known/openid-configuration").json()
    assert doc["authorization_endpoint"] == f"{GATEWAY}/oauth2/authorize"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in doc["grant_types_supported"]
    assert "code" in doc["response_types_supported"]
    assert "ops:read" in doc["scopes_supported"]


def test_staff_sign_in_returns_a_code_that_buys_an_ops_token_once(client: httpx.Client) -> None:
    auth = Authorization()
    answer = sign_in(client, auth, *staff_credentials())
    assert answer.status_code == 303, answer.text
    params = redirect_params(answer)
    assert answer.headers["location"].startswith(auth.redirect_uri + "?")
    assert params["state"] == auth.state
    issued = exchange(client, auth, params["code"])
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["scope"] == "ops:read"
    assert body["token_type"] == "Bearer"
    assert issued.headers["cache-control"] == "no-store"
    # One use only: a replayed code is refused.
    replay = exchange(client, auth, params["code"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The token opens the console's API (Bearer, as scripts use it).
    who = client.get(
        f"{CONSOLE}/api/whoami", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert who.status_code == 200, who.text
    assert "ops:read" in who.json()["scopes"]


def test_a_tampered_code_verifier_is_refused_and_burns_the_code(client: httpx.Client) -> None:
    auth = Authorization()
    code = redirect_params(sign_in(client, auth, *staff_credentials()))["code"]
    tampered = auth.verifier[:-1] + ("A" if auth.verifier[-1] != "A" else "B")
    refused = exchange(client, auth, code, verifier=tampered)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert "access_token" not in refused.text
    # The code had its one attempt: the right verifier afterwards is refused too.
    assert exchange(client, auth, code).status_code == 400


def test_a_code_is_refused_for_another_redirect_uri_or_client(client: httpx.Client) -> None:
    auth = Authorization()
    code = redirect_params(sign_in(client, auth, *staff_credentials()))["code"]
    moved = client.post(
        f"{GATEWAY}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:8090/elsewhere",
            "client_id": auth.client_id,
            "code_verifier": auth.verifier,
        },
    )
    assert moved.status_code == 400
    assert moved.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://127.0.0.1:8090/auth/callback/../../steal",
        "http://127.0.0.1:8090/auth/callbackx",
        "http://127.0.0.1:8090/auth/callback?next=https://evil.example",
    ],
)
def test_a_foreign_redirect_uri_gets_an_error_page_and_no_redirect(
    client: httpx.Client, redirect_uri: str
) -> None:
    auth = Authorization(redirect_uri=redirect_uri)
    page = client.get(auth.url())
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "evil.example" not in page.text
    email, password = staff_credentials()
    posted = client.post(
        f"{GATEWAY}/oauth2/authorize",
        data={**auth.query(), "username": email, "password": password},
    )
    assert posted.status_code == 400
    assert "location" not in posted.headers


def test_a_wrong_password_shows_the_page_again_and_issues_no_code(client: httpx.Client) -> None:
    auth = Authorization()
    email, _ = staff_credentials()
    answer = sign_in(client, auth, email, "not the password at all")
    assert answer.status_code == 401
    assert "location" not in answer.headers
    assert 'data-testid="login-error"' in answer.text
    assert "code=" not in answer.text


def test_plain_pkce_and_missing_challenge_are_refused_back_to_the_client(
    client: httpx.Client,
) -> None:
    plain = Authorization(method="plain")
    refused = client.get(plain.url())
    assert refused.status_code == 303
    assert redirect_params(refused)["error"] == "invalid_request"
    assert redirect_params(refused)["state"] == plain.state
    query = {**Authorization().query(), "code_challenge": ""}
    missing = client.get(f"{GATEWAY}/oauth2/authorize", params=query)
    assert redirect_params(missing)["error"] == "invalid_request"


def test_a_normal_user_cannot_sign_in_to_the_console(
    client: httpx.Client, platform: Platform
) -> None:
    email, _ = platform.register_and_login()
    auth = Authorization()
    answer = sign_in(client, auth, email, "correct horse battery staple")
    assert answer.status_code == 303
    assert redirect_params(answer)["error"] == "access_denied"
    assert "code" not in redirect_params(answer)


def test_the_console_api_refuses_a_user_token_without_ops_read(
    client: httpx.Client, platform: Platform
) -> None:
    _, issued = platform.register_and_login()
    bearer = {"authorization": f"Bearer {issued['access_token']}"}
    for path in ("/api/apps", "/api/traffic", "/api/whoami"):
        refused = client.get(f"{CONSOLE}{path}", headers=bearer)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "insufficient_scope"
    assert client.get(f"{CONSOLE}/api/apps").status_code == 401
    forged = client.get(f"{CONSOLE}/api/apps", headers={"authorization": "Bearer not.a.jwt"})
    assert forged.status_code == 401


def test_the_console_page_sends_an_anonymous_browser_to_sign_in(client: httpx.Client) -> None:
    first = client.get(f"{CONSOLE}/")
    assert first.status_code == 303
    assert first.headers["location"] == "/auth/login"
    login = client.get(f"{CONSOLE}/auth/login")
    assert login.status_code == 303
    assert login.headers["location"].startswith(f"{GATEWAY}/oauth2/authorize?")
    # A callback whose state was not started in this browser is refused.
    forged = client.get(f"{CONSOLE}/auth/callback", params={"code": "x", "state": "y"})
    assert forged.status_code == 400
    assert forged.json()["code"] == "state_mismatch"
    denied = client.get(f"{CONSOLE}/auth/callback", params={"error": "access_denied", "state": "y"})
    assert denied.status_code == 403
    assert denied.json()["code"] == "sign_in_refused"


def test_the_console_answers_bad_input_with_problems_never_500(client: httpx.Client) -> None:
    auth = Authorization()
    code = redirect_params(sign_in(client, auth, *staff_credentials()))["code"]
    token = exchange(client, auth, code).json()["access_token"]
    bearer = {"authorization": f"Bearer {token}"}
    cases = {
        "/api/apps/NOT-AN-ID": (422, "invalid_app_id"),
        "/api/apps/nobody": (404, "app_not_found"),
        "/api/traces?q=..%2F..%2Fetc": (422, "invalid_query"),
        "/api/traces?q=0123456789abcdef0123456789abcdef": (404, "trace_not_found"),
        "/api/traces": (422, None),
    }
    for path, (status, code_name) in cases.items():
        answer = client.get(f"{CONSOLE}{path}", headers=bearer)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json"), path
        if code_name:
            assert answer.json()["code"] == code_name, path
