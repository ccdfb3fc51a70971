"""KAYA787's event contracts: for each event its payload model, topic, CloudEvent types and
version, in one place that producers and consumers both import (pydantic only: no web
framework, HTTP client or Dapr, so any app or tool may depend on it).

The JSON Schemas in libs/contracts/schemas/ are generated from these models:
`python -m kaya787_contracts.export` (or `make schemas`).
"""

from __future__ import annotations

from typing import Final

from kaya787_contracts.accounts import AccountOpenedV1, PostingV1
from kaya787_contracts.base import Event
from kaya787_contracts.identity import TokenRevokedV1, UserRegisteredV1

EVENTS: Final[tuple[type[Event], ...]] = (
    UserRegisteredV1,
    TokenRevokedV1,
    AccountOpenedV1,
    PostingV1,
)
"""Every event published on the platform, one per topic."""

__all__ = ["EVENTS", "AccountOpenedV1", "Event", "PostingV1", "TokenRevokedV1", "UserRegisteredV1"]
