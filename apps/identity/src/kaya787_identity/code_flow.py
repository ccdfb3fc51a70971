"""Use cases of the authorization-code flow with PKCE: check an authorization request,
sign a person in and hand out a one-time code, exchange the code for tokens."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kaya787_identity.code_ports import AuthorizationCodes
from kaya787_identity.oauth_errors import OAuthError
from kaya787_identity.pkce import (
    CHALLENGE,
    CHALLENGE_METHOD,
    STATE_MAX_LENGTH,
    AuthorizationCode,
    AuthorizationRequest,
    PublicClient,
    code_hash,
    verifier_matches,
)
from kaya787_identity.service import IdentityService

CODE_TTL_SECONDS = 60  # RFC 6749 §4.1.2: short-lived; 10 minutes at most


class UntrustedRedirect(Exception):
    """Unknown client or a redirect_uri it did not register: never redirect there."""


@dataclass(frozen=True)
class RedirectError(Exception):
    """An error for a trusted redirect_uri (RFC 6749 §4.1.2.1)."""

    redirect_uri: str
    error: str
    description: str
    state: str


class CodeFlow:
    def __init__(
        self,
        *,
        identity: IdentityService,
        codes: AuthorizationCodes,
        clients: dict[str, PublicClient],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identity = identity
        self._codes = codes
        self._clients = clients
        self._clock = clock

    def check(self, params: dict[str, str]) -> AuthorizationRequest:
        """Validate an authorization request; raise UntrustedRedirect or RedirectError."""
        client = self._clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        # Exact match only (no prefixes, no wildcards): the code goes nowhere else.
        if client is None or redirect_uri not in client.redirect_uris:
            raise UntrustedRedirect
        state = params.get("state", "")

        def fail(error: str, description: str) -> RedirectError:
            return RedirectError(redirect_uri, error, description, state[:STATE_MAX_LENGTH])

        if len(state) > STATE_MAX_LENGTH:
            raise fail("invalid_request", "state is too long.")
        if params.get("response_type") != "code":
            raise fail("unsupported_response_type", "Only response_type=code is supported.")
        if params.get("code_challenge_method") != CHALLENGE_METHOD:
            raise fail("invalid_request", "PKCE with code_challenge_method=S256 is required.")
        challenge = params.get("code_challenge", "")
        if not CHALLENGE.fullmatch(challenge):
            raise fail("invalid_request", "code_challenge must be an S256 challenge.")
        requested = frozenset(params.get("scope", "").split()) or client.scopes
        if not requested <= client.scopes:
            raise fail("invalid_scope", "A requested scope is not available to this client.")
        return AuthorizationRequest(client.client_id, redirect_uri, requested, state, challenge)

    async def sign_in(self, request: AuthorizationRequest, username: str, password: str) -> str:
        """Check the person's password; the one-time code (raises OAuthError when wrong)."""
        subject, allowed = await self._identity.authenticate(username, password)
        granted = request.scope & allowed
        if not granted:
            raise RedirectError(
                request.redirect_uri,
                "access_denied",
                "This account may not use this application.",
                request.state,
            )
        code = secrets.token_urlsafe(32)
        await self._codes.add(
            code_hash(code),
            AuthorizationCode(
                client_id=request.client_id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge,
                subject=subject,
                scope=" ".join(sorted(granted)),
                expires_at=self._clock() + CODE_TTL_SECONDS,
            ),
            CODE_TTL_SECONDS,
        )
        return code

    async def exchange(
        self, code: str, redirect_uri: str, client_id: str, verifier: str
    ) -> dict[str, Any]:
        invalid = OAuthError("invalid_grant", "The authorization code is invalid.")
        # Taken (deleted) before anything is checked: a code gets exactly one attempt, so a
        # stolen code cannot be tried against guessed verifiers.
        found = await self._codes.take(code_hash(code))
        if found is None or found.expires_at <= self._clock():
            raise invalid
        if found.client_id != client_id or found.redirect_uri != redirect_uri:
            raise invalid
        if not verifier_matches(verifier, found.code_challenge):
            raise OAuthError("invalid_grant", "The code_verifier does not match the challenge.")
        return await self._identity.issue(
            found.subject, frozenset(found.scope.split()), client_id=client_id, refresh=True
        )
