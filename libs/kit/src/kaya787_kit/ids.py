"""Ids from the outside are parsed, never pasted into a sidecar URL or a state key.

An id from a request body or path that went into `/v1.0/invoke/...` or `/v1.0/state/...`
unparsed could, after the sidecar normalises the path, land on the caller's own state or
secrets API (`../../state/statestore/x`), or split a state key at Dapr's `||` separator. The
ids we mint are canonical UUIDs, so anything else names nothing: callers answer it as they
answer an unknown id (404), without a sidecar call.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# For request models and query parameters (pydantic anchors nothing itself).
MINTED_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID = re.compile(MINTED_ID_PATTERN)


def is_minted_id(value: str) -> bool:
    """A canonical, lowercase UUID: the only shape of the ids this platform hands out."""
    return _UUID.fullmatch(value) is not None


def url_segment(value: str) -> str:
    """One path segment, percent-encoded whole (`/`, `.`, `%` and all), for sidecar URLs."""
    # quote() leaves dots alone (unreserved), so ".." would stay a segment a normalising
    # server climbs by.
    return quote(value, safe="").replace(".", "%2E")
