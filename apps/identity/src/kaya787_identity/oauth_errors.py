"""OAuth 2.0 errors (RFC 6749 section 5.2) as identity's use cases raise them.

No HTTP here: the edge (oauth.py) gives each its status and headers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OAuthError(Exception):
    error: str  # the RFC 6749 code: invalid_grant, invalid_client, invalid_scope, ...
    description: str
    # Set when the caller must wait (a locked-out login): answered 429 with Retry-After.
    retry_after: int | None = None
