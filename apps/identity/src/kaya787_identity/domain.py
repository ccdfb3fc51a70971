"""Identity rules with no I/O: emails, passwords, scopes, lockouts, refresh families, keys."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Any

from email_validator import EmailNotValidError, validate_email

PASSWORD_MIN_LENGTH = 12
# Long enough for any passphrase; argon2 never sees a megabyte of input.
PASSWORD_MAX_LENGTH = 256
DISPLAY_NAME_MAX_LENGTH = 100

# A customer's scopes: their own profile, accounts and transactions. Platform-wide figures
# (analytics:read), the ops console (ops:read) and key rotation (identity:admin) belong to
# staff (the sign-in page) and service clients (client_credentials) only.
USER_SCOPES = frozenset({"profile", "accounts", "transactions"})
ADMIN_SCOPE = "identity:admin"


class InvalidInput(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def normalise_email(raw: str) -> str:
    """One spelling per mailbox: syntax-checked, whole address lower-cased."""
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput("email", "The email address is not valid.") from exc
    return checked.normalized.lower()


def check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput("password", f"Use at least {PASSWORD_MIN_LENGTH} characters.")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidInput("password", f"Use at most {PASSWORD_MAX_LENGTH} characters.")


def email_key(email: str) -> str:
    """State keys never carry the address itself (it is personal data)."""
    return hashlib.sha256(email.encode()).hexdigest()


def parse_scope(requested: str | None, allowed: frozenset[str]) -> frozenset[str] | None:
    """The granted scopes, or None when something not allowed was asked for."""
    if requested is None or not requested.strip():
        return allowed
    wanted = frozenset(requested.split())
    return wanted if wanted <= allowed else None


@dataclass(frozen=True)
class User:
    id: str
    email: str
    display_name: str
    password_hash: str
    created_at: str

    def public(self) -> dict[str, str]:
        return {"id": self.id, "email": self.email, "display_name": self.display_name}


@dataclass(frozen=True)
class LoginFailures:
    """Failed logins for one email; after the free ones, each waits twice as long."""

    count: int = 0
    locked_until: float = 0.0

    def locked(self, now: float) -> float:
        """Seconds left to wait (0 when a try is allowed)."""
        return max(0.0, self.locked_until - now)

    def failed(self, now: float, free: int, max_lockout: int) -> LoginFailures:
        count = self.count + 1
        if count <= free:
            return replace(self, count=count, locked_until=0.0)
        wait = min(float(max_lockout), math.pow(2, count - free))
        return LoginFailures(count=count, locked_until=now + wait)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "locked_until": self.locked_until}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoginFailures:
        return cls(int(data.get("count", 0)), float(data.get("locked_until", 0.0)))


@dataclass(frozen=True)
class RefreshToken:
    """A stored refresh token (by hash). Each use consumes it; reuse burns the family."""

    family_id: str
    subject: str
    scope: str
    client_id: str
    expires_at: float
    used: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "family_id": self.family_id,
            "subject": self.subject,
            "scope": self.scope,
            "client_id": self.client_id,
            "expires_at": self.expires_at,
            "used": self.used,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RefreshToken:
        return cls(
            family_id=str(data["family_id"]),
            subject=str(data["subject"]),
            scope=str(data["scope"]),
            client_id=str(data.get("client_id", "")),
            expires_at=float(data["expires_at"]),
            used=bool(data.get("used", False)),
        )


def refresh_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRing:
    """Which signing key signs, which is published ahead of use, which retire when.

    Rotation publishes keys before they sign (`next`) and keeps a retired key published
    until every token it signed has expired, so verifiers never meet an unknown kid.
    """

    active: str
    next: str | None = None
    retired: dict[str, float] = field(default_factory=dict)

    def published(self, now: float) -> list[str]:
        kids = [self.active]
        if self.next and self.next != self.active:
            kids.append(self.next)
        kids += [k for k, until in self.retired.items() if until > now and k not in kids]
        return kids

    def rotate(self, available: list[str], now: float, keep_old_for: float) -> KeyRing:
        if len(available) < 2:
            raise ValueError("rotation needs at least two signing keys in the secret store")
        candidate = self.next if self.next in available else _after(available, self.active)
        if candidate is None:
            raise ValueError("no next signing key")
        new_active = candidate
        retired = {k: t for k, t in self.retired.items() if t > now and k != new_active}
        retired[self.active] = now + keep_old_for
        return KeyRing(active=new_active, next=_after(available, new_active), retired=retired)

    def to_json(self) -> dict[str, Any]:
        return {"active": self.active, "next": self.next, "retired": dict(self.retired)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRing:
        return cls(
            active=str(data["active"]),
            next=data.get("next"),
            retired={str(k): float(v) for k, v in dict(data.get("retired", {})).items()},
        )

    @classmethod
    def first(cls, available: list[str]) -> KeyRing:
        if not available:
            raise ValueError("no signing key in the secret store")
        return cls(active=available[0], next=_after(available, available[0]))


def _after(available: list[str], kid: str) -> str | None:
    if len(available) < 2:
        return None
    index = available.index(kid) if kid in available else -1
    return available[(index + 1) % len(available)]
