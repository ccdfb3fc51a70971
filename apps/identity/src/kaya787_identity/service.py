"""Identity use cases: registration, the OAuth 2.0 grants, revocation, keys."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from kaya787_contracts.identity import UserRegisteredV1
from kaya787_kit.concurrency import EtagConflict, retry_on_conflict
from kaya787_kit.errors import Busy, Conflict, Invalid, NotFound
from kaya787_kit.principal import Principal

from kaya787_identity.code_ports import StaffRegistry
from kaya787_identity.domain import (
    ADMIN_SCOPE,
    DISPLAY_NAME_MAX_LENGTH,
    USER_SCOPES,
    InvalidInput,
    KeyRing,
    RefreshToken,
    User,
    check_password,
    email_key,
    normalise_email,
    parse_scope,
    refresh_hash,
)
from kaya787_identity.oauth_errors import OAuthError
from kaya787_identity.ports import (
    ClientRegistry,
    EmailTaken,
    LoginFailureStore,
    PasswordHashing,
    RefreshTokenStore,
    RevokedTokens,
    SigningKeys,
    UserRepository,
)
from kaya787_identity.signing import ALGORITHM, public_jwk, sign


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int
    free_failures: int
    max_lockout: int


# Staff subjects cannot collide with user ids (uuid4) nor client ids.
STAFF_PREFIX = "staff:"


def _bad_credentials() -> OAuthError:
    # One message for unknown email and wrong password: it reveals nothing.
    return OAuthError("invalid_grant", "The email or password is incorrect.")


class IdentityService:
    def __init__(
        self,
        *,
        users: UserRepository,
        failures: LoginFailureStore,
        refresh_tokens: RefreshTokenStore,
        revoked: RevokedTokens,
        keys: SigningKeys,
        clients: ClientRegistry,
        passwords: PasswordHashing,
        policy: TokenPolicy,
        staff: StaffRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._users = users
        self._failures = failures
        self._refresh = refresh_tokens
        self._revoked = revoked
        self._keys = keys
        self._clients = clients
        self._passwords = passwords
        self._policy = policy
        self._staff = staff
        self._clock = clock

    # ------------------------------------------------------------------ users
    async def register(self, email: str, password: str, display_name: str | None) -> User:
        try:
            normalised = normalise_email(email)
            check_password(password)
        except InvalidInput as exc:
            raise Invalid(f"invalid_{exc.field}", str(exc)) from exc
        name = (display_name or normalised.split("@")[0]).strip()[:DISPLAY_NAME_MAX_LENGTH]
        now = datetime.now(UTC).isoformat()
        user = User(
            id=str(uuid.uuid4()),
            email=normalised,
            display_name=name,
            password_hash=await self._passwords.hash(password),
            created_at=now,
        )
        try:
            await self._users.create(user, UserRegisteredV1(user_id=user.id, registered_at=now))
        except EmailTaken as exc:
            raise Conflict("email_taken", "An account with this email exists.") from exc
        return user

    async def me(self, principal: Principal) -> User:
        user = await self._users.by_id(principal.subject)
        if user is None:
            raise NotFound("user_not_found", "The user of this token no longer exists.")
        return user

    # ----------------------------------------------------------------- grants
    async def password_grant(
        self, username: str, password: str, scope: str | None
    ) -> dict[str, Any]:
        granted = parse_scope(scope, USER_SCOPES)
        if granted is None:
            raise OAuthError("invalid_scope", "A requested scope is not available.")
        subject, _ = await self._authenticate(username, password, staff=False)
        return await self._issue(subject, granted, client_id="kaya787-web", refresh=True)

    async def authenticate(self, username: str, password: str) -> tuple[str, frozenset[str]]:
        """A person's subject and the scopes they may hold (staff first, then users); the
        sign-in page's check. Raises OAuthError, with the same lockout as the password grant."""
        return await self._authenticate(username, password, staff=True)

    async def _authenticate(
        self, username: str, password: str, *, staff: bool
    ) -> tuple[str, frozenset[str]]:
        try:
            email = normalise_email(username)
        except InvalidInput:
            await self._passwords.verify_nothing(password)
            raise _bad_credentials() from None
        key = email_key(email)
        failures, _ = await self._failures.load(key)
        wait = failures.locked(self._clock())
        if wait > 0:
            raise OAuthError(
                "invalid_grant",
                "Too many failed attempts; try again later.",
                retry_after=int(wait) + 1,
            )
        member = await self._staff.get(email) if staff and self._staff is not None else None
        subject: str | None = None
        scopes: frozenset[str] = frozenset()
        if member is not None:
            if await self._passwords.verify(member.password_hash, password):
                subject, scopes = f"{STAFF_PREFIX}{email}", member.scopes
        else:
            user = await self._users.by_email(email)
            if user is None:
                await self._passwords.verify_nothing(password)
            elif await self._passwords.verify(user.password_hash, password):
                subject, scopes = user.id, USER_SCOPES
        if subject is None:
            await self._record_failure(key)
            raise _bad_credentials()
        if failures.count:
            await self._failures.clear(key)
        return subject, scopes

    async def issue(
        self, subject: str, scopes: frozenset[str], *, client_id: str, refresh: bool
    ) -> dict[str, Any]:
        """Tokens for a subject already authenticated (the authorization-code exchange)."""
        return await self._issue(subject, scopes, client_id=client_id, refresh=refresh)

    async def _record_failure(self, key: str) -> None:
        async def attempt() -> None:
            current, etag = await self._failures.load(key)
            await self._failures.save(
                key,
                current.failed(self._clock(), self._policy.free_failures, self._policy.max_lockout),
                etag,
            )

        await retry_on_conflict(attempt)

    async def refresh_grant(self, token: str, scope: str | None) -> dict[str, Any]:
        token_hash = refresh_hash(token)
        found = await self._refresh.get(token_hash)
        invalid = OAuthError("invalid_grant", "The refresh token is invalid.")
        if found is None:
            raise invalid
        record, etag = found.value, found.etag
        if record.expires_at <= self._clock():
            raise invalid
        if await self._refresh.family_revoked(record.family_id):
            raise invalid
        if record.used:
            await self._refresh.revoke_family(record.family_id, self._policy.refresh_ttl)
            raise OAuthError("invalid_grant", "The refresh token was already used.")
        granted = parse_scope(scope, frozenset(record.scope.split()))
        if granted is None:
            raise OAuthError("invalid_scope", "A scope beyond the original grant was requested.")
        try:
            await self._refresh.consume(token_hash, record, etag)
        except EtagConflict:
            # Two uses racing: one of them is a replay. Burn the family.
            await self._refresh.revoke_family(record.family_id, self._policy.refresh_ttl)
            raise OAuthError("invalid_grant", "The refresh token was already used.") from None
        if not await self._subject_exists(record.subject):
            raise invalid
        return await self._issue(
            record.subject,
            granted,
            client_id=record.client_id,
            refresh=True,
            family_id=record.family_id,
        )

    async def _subject_exists(self, subject: str) -> bool:
        if subject.startswith(STAFF_PREFIX):  # removed from the registry: no more refreshes
            staff = self._staff
            return staff is not None and await staff.get(subject[len(STAFF_PREFIX) :]) is not None
        return await self._users.by_id(subject) is not None

    async def client_credentials_grant(
        self, client_id: str, client_secret: str, scope: str | None
    ) -> dict[str, Any]:
        client = await self._clients.get(client_id) if client_id else None
        if client is None:
            await self._passwords.verify_nothing(client_secret)
            raise _invalid_client()
        if not await self._passwords.verify(client.secret_hash, client_secret):
            raise _invalid_client()
        granted = parse_scope(scope, client.scopes)
        if granted is None:
            raise OAuthError("invalid_scope", "A requested scope is not granted to this client.")
        return await self._issue(client_id, granted, client_id=client_id, refresh=False)

    async def _issue(
        self,
        subject: str,
        scopes: frozenset[str],
        *,
        client_id: str,
        refresh: bool,
        family_id: str | None = None,
    ) -> dict[str, Any]:
        now = int(self._clock())
        scope = " ".join(sorted(scopes))
        claims = {
            "iss": self._policy.issuer,
            "aud": self._policy.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + self._policy.access_ttl,
            "jti": str(uuid.uuid4()),
            "scope": scope,
            "client_id": client_id,
        }
        kid, key = await self._signing_key()
        body: dict[str, Any] = {
            "access_token": sign(claims, kid, key),
            "token_type": "Bearer",
            "expires_in": self._policy.access_ttl,
            "scope": scope,
        }
        if refresh:
            token = secrets.token_urlsafe(32)
            record = RefreshToken(
                family_id=family_id or str(uuid.uuid4()),
                subject=subject,
                scope=scope,
                client_id=client_id,
                expires_at=now + self._policy.refresh_ttl,
            )
            await self._refresh.add(refresh_hash(token), record, self._policy.refresh_ttl)
            body["refresh_token"] = token
        return body

    # ------------------------------------------------------------- revocation
    async def revoke(self, token: str) -> None:
        """RFC 7009: always succeeds; unknown tokens are simply not ours to revoke."""
        if token.count(".") == 2:
            claims = await self._our_claims(token)
            if claims is not None:
                ttl = int(claims["exp"]) - int(self._clock()) + 60
                if ttl > 0:
                    await self._revoked.revoke(str(claims["jti"]), ttl)
                return
        found = await self._refresh.get(refresh_hash(token))
        if found is not None:
            await self._refresh.revoke_family(found.value.family_id, self._policy.refresh_ttl)

    async def _our_claims(self, token: str) -> dict[str, Any] | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = (await self._keys.available()).get(str(kid))
            if key is None:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key(),
                algorithms=[ALGORITHM],
                audience=self._policy.audience,
                issuer=self._policy.issuer,
                options={"verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        return claims

    async def is_revoked(self, token_id: str) -> bool:
        return await self._revoked.is_revoked(token_id)

    async def revoked_tokens(self) -> dict[str, int]:
        """What the other apps load into their revocation feed."""
        return await self._revoked.active()

    # ------------------------------------------------------------------- keys
    async def _ring(self) -> KeyRing:
        ring, _ = await self._keys.ring()
        if ring is not None:
            return ring
        available = list(await self._keys.available())
        with contextlib.suppress(EtagConflict):  # another replica set it up first
            await self._keys.save_ring(KeyRing.first(available), etag=None)
        ring, _ = await self._keys.ring()
        assert ring is not None
        return ring

    async def _signing_key(self) -> tuple[str, Any]:
        ring = await self._ring()
        available = await self._keys.available()
        if ring.active not in available:
            raise Busy("signing_key_missing", "The active signing key is not available.")
        return ring.active, available[ring.active]

    async def jwks(self) -> dict[str, Any]:
        ring = await self._ring()
        available = await self._keys.available()
        return {
            "keys": [
                public_jwk(kid, available[kid])
                for kid in ring.published(self._clock())
                if kid in available
            ]
        }

    async def rotate_signing_key(self) -> dict[str, Any]:
        await self._ring()  # make sure there is a ring to rotate

        async def attempt() -> KeyRing:
            ring, etag = await self._keys.ring()
            assert ring is not None
            available = list(await self._keys.available())
            try:
                rotated = ring.rotate(
                    available, self._clock(), keep_old_for=self._policy.access_ttl + 120
                )
            except ValueError as exc:
                raise Conflict("no_next_key", str(exc)) from exc
            await self._keys.save_ring(rotated, etag)
            return rotated

        rotated = await retry_on_conflict(attempt)
        return {"active_kid": rotated.active, "published_kids": rotated.published(self._clock())}


def _invalid_client() -> OAuthError:
    return OAuthError("invalid_client", "Client authentication failed.")


__all__ = ["ADMIN_SCOPE", "IdentityService", "TokenPolicy"]
