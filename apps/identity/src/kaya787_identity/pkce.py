"""The authorization-code flow's rules (RFC 6749 §4.1 + PKCE, RFC 7636): public clients
and their exact redirect URIs, codes, verifiers. Pure: no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

OPS_SCOPE = "ops:read"
CHALLENGE_METHOD = "S256"  # "plain" is refused: it protects nothing if the request leaks
# RFC 7636 §4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
# S256 challenges are BASE64URL(SHA-256) without padding: exactly 43 characters.
CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
STATE_MAX_LENGTH = 512


@dataclass(frozen=True)
class PublicClient:
    """A browser application: no secret, so PKCE and an exact redirect URI protect it."""

    client_id: str
    redirect_uris: frozenset[str]
    scopes: frozenset[str]


def parse_public_clients(raw: str) -> dict[str, PublicClient]:
    data: dict[str, Any] = json.loads(raw)
    return {
        client_id: PublicClient(
            client_id=client_id,
            redirect_uris=frozenset(str(u) for u in entry["redirect_uris"]),
            scopes=frozenset(str(s) for s in entry["scopes"]),
        )
        for client_id, entry in data.items()
    }


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str) -> bool:
    if not VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)


def code_hash(code: str) -> str:
    """Codes are stored by hash: a read of the store gives no usable code."""
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: frozenset[str]
    state: str
    code_challenge: str


@dataclass(frozen=True)
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    subject: str
    scope: str
    expires_at: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationCode:
        return cls(
            client_id=str(data["client_id"]),
            redirect_uri=str(data["redirect_uri"]),
            code_challenge=str(data["code_challenge"]),
            subject=str(data["subject"]),
            scope=str(data["scope"]),
            expires_at=float(data["expires_at"]),
        )


@dataclass(frozen=True)
class StaffMember:
    """An operator: lives hashed in the secret store, like service clients."""

    email: str
    password_hash: str
    scopes: frozenset[str]
