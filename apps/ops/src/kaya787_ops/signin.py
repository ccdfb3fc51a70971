"""Sign-in for people: the OAuth 2.0 authorization-code flow with PKCE (RFC 7636) against
identity, as a confidential-less "backend for frontend". The browser only ever holds an
HttpOnly session cookie; the code_verifier never leaves this process."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import Request
from kaya787_kit.auth import TokenVerifier
from kaya787_kit.principal import Principal
from kaya787_kit.problems import Problem

from kaya787_ops.domain import pkce_challenge

SESSION_COOKIE = "kaya787_ops_session"
STATE_COOKIE = "kaya787_ops_state"
LOGIN_TTL_SECONDS = 600
MAX_PENDING_LOGINS = 1000


class CodeExchange(Protocol):
    async def exchange(
        self, code: str, verifier: str, client_id: str, redirect_uri: str
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SignInConfig:
    issuer: str  # the browser is sent to {issuer}/oauth2/authorize
    client_id: str
    redirect_uri: str
    scope: str


class NoRevocations:
    """The console is no Dapr app, so it cannot read identity's revocation feed; its
    sessions are bounded by the access token's 15 minutes instead."""

    async def is_revoked(self, token_id: str) -> bool:
        return False


class SignIn:
    def __init__(self, config: SignInConfig, tokens: CodeExchange, verifier: TokenVerifier) -> None:
        self._config = config
        self._tokens = tokens
        self._verifier = verifier
        # state -> (code_verifier, created); bounded, so unfinished logins cannot grow it.
        self._pending: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def start(self) -> tuple[str, str]:
        """The authorize URL to send the browser to, and the state to bind to its cookie."""
        now = time.monotonic()
        while self._pending and (
            len(self._pending) >= MAX_PENDING_LOGINS
            or next(iter(self._pending.values()))[1] < now - LOGIN_TTL_SECONDS
        ):
            self._pending.popitem(last=False)
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # 64 chars of the unreserved set (RFC 7636 §4.1)
        self._pending[state] = (verifier, now)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._config.client_id,
                "redirect_uri": self._config.redirect_uri,
                "scope": self._config.scope,
                "state": state,
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self._config.issuer.rstrip('/')}/oauth2/authorize?{query}", state

    async def finish(self, code: str, state: str, cookie_state: str | None) -> str:
        """Exchange the code; the verified access token (with the console's scope)."""
        if not cookie_state or not secrets.compare_digest(cookie_state, state):
            raise Problem(400, "state_mismatch", "This sign-in was not started in this browser.")
        pending = self._pending.pop(state, None)
        if pending is None or pending[1] < time.monotonic() - LOGIN_TTL_SECONDS:
            raise Problem(400, "login_expired", "The sign-in took too long; start again.")
        try:
            body = await self._tokens.exchange(
                code, pending[0], self._config.client_id, self._config.redirect_uri
            )
        except PermissionError as exc:
            raise Problem(400, "code_refused", f"Identity refused the code: {exc}") from exc
        token = str(body.get("access_token", ""))
        await self.authorize(token)
        return token

    async def authorize(self, token: str) -> Principal:
        principal = await self._verifier.verify(token)
        if self._config.scope not in principal.scopes:
            raise Problem(
                403,
                "insufficient_scope",
                f"The ops console needs the {self._config.scope!r} scope.",
            )
        return principal

    async def principal(self, request: Request) -> Principal:
        """The caller of an /api route: a Bearer token (scripts) or the session cookie."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise Problem(
                401,
                "not_signed_in",
                "Sign in at /auth/login first.",
                headers={"WWW-Authenticate": 'Bearer realm="kaya787-ops"'},
            )
        return await self.authorize(token)
