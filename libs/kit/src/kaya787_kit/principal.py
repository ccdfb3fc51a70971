"""Who is calling, as a verified access token says: what use cases may rely on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    token_id: str
    expires_at: int
    client_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
