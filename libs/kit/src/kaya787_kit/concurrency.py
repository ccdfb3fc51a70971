"""Optimistic concurrency, free of the transport: versioned values and lost races.

Every read-modify-write reads a value with its version (the store's ETag) and writes it
back only at that version; a lost race raises EtagConflict and is retried from the read.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
V = TypeVar("V", covariant=True)


class EtagConflict(Exception):
    """Someone else wrote the key since we read it, or an insert found it already there."""


@dataclass(frozen=True)
class Versioned(Generic[V]):
    """A value as read, with the version a write must name to replace it."""

    value: V
    etag: str


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], *, attempts: int = 8) -> T:
    """Run a read-modify-write again when it loses a race, a bounded number of times.

    Backs off with jitter (up to ~0.3 s) so that writers of a hot key stop colliding.
    """
    for i in range(attempts - 1):
        try:
            return await attempt()
        except EtagConflict:
            await asyncio.sleep(random.uniform(0, min(0.3, 0.005 * 2**i)))  # noqa: S311
    return await attempt()
