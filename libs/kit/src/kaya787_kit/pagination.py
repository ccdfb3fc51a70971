"""The one list envelope of every paginated route (accounts' entries, transactions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None,
        description="Pass back as `?cursor=` for the next (older) page; null on the last one.",
    )


def page_of(items: Sequence[T], next_cursor: int | None) -> Page[T]:
    # Cursors are opaque strings to clients, whatever they are inside.
    return Page[T](items=list(items), next_cursor=None if next_cursor is None else str(next_cursor))
