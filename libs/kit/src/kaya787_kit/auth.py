"""Verify access tokens in every app: the gateway's check is an early filter, not the only one.

Checks: algorithm allow-list, `kid` looked up in a cached JWKS (refetched once, bounded,
on an unknown kid), signature, `iss`, `aud`, `exp`/`nbf`/`iat` with a small leeway, the
revocation list, then scopes. Failures are 401 (token) or 403 (scope) problem+json.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
import jwt
from fastapi import Request
from jwt.algorithms import ECAlgorithm

from kaya787_kit.principal import Principal
from kaya787_kit.problems import Problem

ALLOWED_ALGORITHMS = ("ES256",)
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "nbf", "jti")
LEEWAY_SECONDS = 30
JWKS_TTL_SECONDS = 300.0
# At most one refetch per this many seconds, whatever kids attackers send.
JWKS_MIN_REFETCH_SECONDS = 10.0


class JwksFetcher(Protocol):
    async def __call__(self) -> Mapping[str, Any]: ...


class RevocationList(Protocol):
    async def is_revoked(self, token_id: str) -> bool: ...


def _unauthorized(detail: str, code: str = "invalid_token") -> Problem:
    return Problem(401, code, detail, headers={"WWW-Authenticate": f'Bearer error="{code}"'})


class JwksCache:
    """Public keys by kid, fetched from identity and refreshed lazily."""

    def __init__(self, fetch: JwksFetcher, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str) -> Any | None:
        if kid in self._keys and not self._stale():
            return self._keys[kid]
        async with self._lock:
            if (kid not in self._keys or self._stale()) and self._may_refetch():
                await self._refresh()
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > JWKS_TTL_SECONDS

    def _may_refetch(self) -> bool:
        return (
            self._fetched_at is None or self._clock() - self._fetched_at >= JWKS_MIN_REFETCH_SECONDS
        )

    async def _refresh(self) -> None:
        try:
            document = await self._fetch()
        except (httpx.HTTPError, ValueError) as exc:
            if not self._keys:
                raise Problem(503, "jwks_unavailable", "Token keys are unavailable.") from exc
            return  # keep serving with the keys we have
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") == "EC" and jwk.get("kid") and jwk.get("use", "sig") == "sig":
                keys[str(jwk["kid"])] = ECAlgorithm.from_jwk(json.dumps(jwk))
        self._keys = keys
        self._fetched_at = self._clock()


class TokenVerifier:
    def __init__(
        self,
        keys: JwksCache,
        *,
        issuer: str,
        audience: str,
        revocations: RevocationList,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._revocations = revocations
        self._clock = clock

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _unauthorized("The access token is malformed.") from exc
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise _unauthorized("The access token's algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthorized("The access token has no key id.")
        key = await self._keys.key_for(kid)
        if key is None:
            raise _unauthorized("The access token was signed by an unknown key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("The access token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _unauthorized("The access token is not valid yet.") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized("The access token is invalid.") from exc
        token_id = str(claims["jti"])
        if await self._revocations.is_revoked(token_id):
            raise _unauthorized("The access token has been revoked.")
        scope = claims.get("scope", "")
        return Principal(
            subject=str(claims["sub"]),
            scopes=frozenset(str(scope).split()) if isinstance(scope, str) else frozenset(),
            token_id=token_id,
            expires_at=int(claims["exp"]),
            client_id=claims.get("client_id"),
            claims=claims,
        )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("A Bearer access token is required.", code="invalid_request")
    return token.strip()


def require_scopes(*scopes: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the verified caller, who must hold every scope listed."""
    needed = frozenset(scopes)

    async def dependency(request: Request) -> Principal:
        verifier: TokenVerifier = request.app.state.token_verifier
        principal = await verifier.verify(bearer_token(request))
        missing = needed - principal.scopes
        if missing:
            raise Problem(
                403,
                "insufficient_scope",
                "The access token lacks a required scope.",
                extra={"required_scopes": sorted(needed)},
                headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
            )
        return principal

    return dependency


class InvokedJwks:
    """Fetch identity's JWKS through our own sidecar (service invocation, mTLS)."""

    def __init__(self, sidecar_http: httpx.AsyncClient, identity_app_id: str) -> None:
        self._http = sidecar_http
        self._path = f"/v1.0/invoke/{identity_app_id}/method/.well-known/jwks.json"

    async def __call__(self) -> Mapping[str, Any]:
        response = await self._http.get(self._path)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document
