"""Dapr implementations of the identity ports (state store, secret store, outbox)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from kaya787_contracts.identity import TokenRevokedV1, UserRegisteredV1
from kaya787_kit.concurrency import EtagConflict, Versioned, retry_on_conflict
from kaya787_kit.outbox import EventPublisher
from kaya787_kit.outbox_event import OutboxEvent
from kaya787_kit.secrets import DaprSecrets
from kaya787_kit.state import OUTBOX_PROJECTION, DaprStateStore, Put

from kaya787_identity.domain import KeyRing, LoginFailures, RefreshToken, User, email_key
from kaya787_identity.ports import EmailTaken, ServiceClient
from kaya787_identity.signing import load_private_key

SECRET_CACHE_SECONDS = 60.0


def _ttl(seconds: int) -> dict[str, str]:
    return {"ttlInSeconds": str(max(1, seconds))}


class DaprUserRepository:
    """`email:<hash>` claims the address (insert-only, so uniqueness holds under races);
    `user:<id>` holds the user and is written in the outbox transaction that publishes
    identity.user-registered.v1 (the component's outboxPublishTopic), so the record and its
    event commit together."""

    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def create(self, user: User, event: UserRegisteredV1) -> None:
        claim_key = f"email:{email_key(user.email)}"
        try:
            await self._state.save(claim_key, {"user_id": user.id}, etag=None)
        except EtagConflict:
            await self._take_over_orphan_claim(claim_key, user.id)
        await self._state.transact(
            [
                # The record's metadata sets the event's CloudEvent fields; without it
                # Dapr's outbox types every event "com.dapr.event.sent".
                Put(f"user:{user.id}", _user_json(user), metadata={"type": event.EVENT_TYPES[0]}),
                Put(f"user:{user.id}", event.model_dump(mode="json"), metadata=OUTBOX_PROJECTION),
            ]
        )

    async def _take_over_orphan_claim(self, claim_key: str, user_id: str) -> None:
        # A claim whose user record never got written (a crash between the two writes)
        # belongs to nobody: the next registration may finish it instead of failing forever.
        claim = await self._state.get(claim_key)
        if claim is None:
            raise EmailTaken  # claimed and released concurrently; let the caller retry
        if await self._state.get(f"user:{claim.value['user_id']}") is not None:
            raise EmailTaken
        try:
            await self._state.save(claim_key, {"user_id": user_id}, etag=claim.etag)
        except EtagConflict as exc:
            raise EmailTaken from exc

    async def by_email(self, email: str) -> User | None:
        claim = await self._state.get(f"email:{email_key(email)}")
        if claim is None:
            return None
        return await self.by_id(str(claim.value["user_id"]))

    async def by_id(self, user_id: str) -> User | None:
        found = await self._state.get(f"user:{user_id}")
        return None if found is None else _user_from(found.value)


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "password_hash": user.password_hash,
        "created_at": user.created_at,
    }


def _user_from(data: dict[str, Any]) -> User:
    return User(
        id=str(data["id"]),
        email=str(data["email"]),
        display_name=str(data.get("display_name", "")),
        password_hash=str(data["password_hash"]),
        created_at=str(data["created_at"]),
    )


class DaprLoginFailures:
    def __init__(self, state: DaprStateStore, keep_seconds: int) -> None:
        self._state = state
        self._keep = keep_seconds

    async def load(self, key: str) -> tuple[LoginFailures, str | None]:
        found = await self._state.get(f"login-failures:{key}")
        if found is None:
            return LoginFailures(), None
        return LoginFailures.from_json(found.value), found.etag

    async def save(self, key: str, failures: LoginFailures, etag: str | None) -> None:
        await self._state.save(
            f"login-failures:{key}", failures.to_json(), etag, metadata=_ttl(self._keep)
        )

    async def clear(self, key: str) -> None:
        found = await self._state.get(f"login-failures:{key}")
        if found is not None:
            await self._state.delete(f"login-failures:{key}", found.etag)


class DaprRefreshTokens:
    def __init__(self, state: DaprStateStore) -> None:
        self._state = state

    async def get(self, token_hash: str) -> Versioned[RefreshToken] | None:
        found = await self._state.get(f"refresh:{token_hash}")
        if found is None:
            return None
        return Versioned(RefreshToken.from_json(found.value), found.etag)

    async def add(self, token_hash: str, token: RefreshToken, ttl_seconds: int) -> None:
        await self._state.save(
            f"refresh:{token_hash}", token.to_json(), etag=None, metadata=_ttl(ttl_seconds)
        )

    async def consume(self, token_hash: str, token: RefreshToken, etag: str) -> None:
        used = RefreshToken(**{**token.__dict__, "used": True})
        remaining = int(token.expires_at - time.time())
        await self._state.save(
            f"refresh:{token_hash}", used.to_json(), etag=etag, metadata=_ttl(remaining)
        )

    async def family_revoked(self, family_id: str) -> bool:
        return await self._state.get(f"refresh-family-revoked:{family_id}") is not None

    async def revoke_family(self, family_id: str, ttl_seconds: int) -> None:
        with contextlib.suppress(EtagConflict):  # already revoked
            await self._state.save(
                f"refresh-family-revoked:{family_id}",
                {"revoked": True},
                etag=None,
                metadata=_ttl(ttl_seconds),
            )


class DaprRevokedTokens:
    """Revoked access tokens: a key per token (identity's own check), the list of those not
    expired yet (what the other apps load) and an `identity.token-revoked.v1` event (what
    tells them at once). The list is one small document: access tokens live minutes."""

    LIST_KEY = "revoked-access-tokens"

    def __init__(
        self,
        state: DaprStateStore,
        events: EventPublisher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._events = events
        self._clock = clock

    async def revoke(self, token_id: str, ttl_seconds: int) -> None:
        expires_at = int(self._clock()) + ttl_seconds
        with contextlib.suppress(EtagConflict):  # already revoked
            await self._state.save(
                f"revoked-jti:{token_id}",
                {"revoked": True},
                etag=None,
                metadata=_ttl(ttl_seconds),
            )

        async def listed() -> None:
            found = await self._state.get(self.LIST_KEY)
            now = int(self._clock())
            current = {k: int(v) for k, v in (found.value if found else {}).items() if int(v) > now}
            current[token_id] = expires_at
            await self._state.save(self.LIST_KEY, current, found.etag if found else None)

        await retry_on_conflict(listed)
        if self._events is not None:
            # At least once: a lost event is in the list the apps reload every few seconds.
            await self._events.publish(revocation_event(token_id, expires_at))

    async def is_revoked(self, token_id: str) -> bool:
        return await self._state.get(f"revoked-jti:{token_id}") is not None

    async def active(self) -> dict[str, int]:
        found = await self._state.get(self.LIST_KEY)
        now = int(self._clock())
        return {k: int(v) for k, v in (found.value if found else {}).items() if int(v) > now}


def revocation_event(token_id: str, expires_at: int) -> OutboxEvent:
    """identity.token-revoked.v1 for one token, keyed (and deduplicated) by its id."""
    revoked = TokenRevokedV1(token_id=token_id, expires_at=expires_at)
    return OutboxEvent(
        topic=TokenRevokedV1.TOPIC,
        event_id=f"{token_id}:revoked",
        event_type=TokenRevokedV1.TOPIC,
        partition_key=token_id,
        data=revoked.model_dump(mode="json"),
    )


class _CachedSecret:
    def __init__(self, secrets: DaprSecrets, name: str) -> None:
        self._secrets = secrets
        self._name = name
        self._value: Any = None
        self._at = 0.0

    async def json(self) -> Any:
        if self._value is None or time.monotonic() - self._at > SECRET_CACHE_SECONDS:
            self._value = json.loads(await self._secrets.get(self._name))
            self._at = time.monotonic()
        return self._value

    def forget(self) -> None:
        self._value = None


class DaprSigningKeys:
    """Private keys live in the secret store; which one signs lives in state (`keyring`)."""

    def __init__(self, secrets: DaprSecrets, secret_name: str, state: DaprStateStore) -> None:
        self._secret = _CachedSecret(secrets, secret_name)
        self._state = state
        self._keys: dict[str, Any] = {}

    async def available(self) -> dict[str, Any]:
        raw: dict[str, str] = await self._secret.json()
        if set(raw) != set(self._keys):
            self._keys = {kid: load_private_key(pem) for kid, pem in raw.items()}
        return dict(self._keys)

    async def ring(self) -> tuple[KeyRing | None, str | None]:
        found = await self._state.get("signing-keyring")
        if found is None:
            return None, None
        return KeyRing.from_json(found.value), found.etag

    async def save_ring(self, ring: KeyRing, etag: str | None) -> None:
        self._secret.forget()  # operators add keys before rotating: read them afresh
        await self._state.save("signing-keyring", ring.to_json(), etag)


class DaprClientRegistry:
    def __init__(self, secrets: DaprSecrets, secret_name: str) -> None:
        self._secret = _CachedSecret(secrets, secret_name)

    async def get(self, client_id: str) -> ServiceClient | None:
        clients: dict[str, dict[str, Any]] = await self._secret.json()
        entry = clients.get(client_id)
        if entry is None:
            return None
        return ServiceClient(
            client_id=client_id,
            secret_hash=str(entry["secret_hash"]),
            scopes=frozenset(entry.get("scopes", [])),
        )
