"""The authorization-code flow with PKCE driven over HTTP, as a browser would, for tests
of identity's sign-in page and of the ops console's session."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.support.platform import ROOT

GATEWAY = "http://127.0.0.1:8080"
CONSOLE = "http://127.0.0.1:8090"
CONSOLE_CLIENT = "kaya787-ops-console"
CONSOLE_REDIRECT = f"{CONSOLE}/auth/callback"
STAFF_FILE = ROOT / "var" / "secrets" / "staff.json"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def staff_credentials() -> tuple[str, str]:
    """The dev operator generated at bootstrap (var/secrets/staff.json)."""
    staff: dict[str, str] = json.loads(STAFF_FILE.read_text())
    email, password = next(iter(staff.items()))
    return email, password


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Authorization:
    client_id: str = CONSOLE_CLIENT
    redirect_uri: str = CONSOLE_REDIRECT
    scope: str = "ops:read"
    method: str = "S256"

    def __post_init__(self) -> None:
        self.verifier = secrets.token_urlsafe(48)
        self.state = secrets.token_urlsafe(16)

    def query(self) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "code_challenge": challenge_of(self.verifier),
            "code_challenge_method": self.method,
        }

    def url(self) -> str:
        return f"{GATEWAY}/oauth2/authorize?{urlencode(self.query())}"


def login_form(page: httpx.Response) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in _HIDDEN.findall(page.text)}


def sign_in(client: httpx.Client, auth: Authorization, email: str, password: str) -> httpx.Response:
    """GET the sign-in page, POST the form; the answer (a 303 with the code, or the page)."""
    page = client.get(auth.url())
    assert page.status_code == 200, page.text
    return client.post(
        f"{GATEWAY}/oauth2/authorize",
        data={**login_form(page), "username": email, "password": password},
    )


def redirect_params(response: httpx.Response) -> dict[str, str]:
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(
    client: httpx.Client, auth: Authorization, code: str, verifier: str | None = None
) -> httpx.Response:
    return client.post(
        f"{GATEWAY}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": auth.redirect_uri,
            "client_id": auth.client_id,
            "code_verifier": auth.verifier if verifier is None else verifier,
        },
    )
