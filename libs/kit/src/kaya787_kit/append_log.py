"""An append-only log in a key-value state store, safe on stores without rollback.

The head document (any JSON object the caller also keeps its own fields in) holds `count`
and the newest item (`last`); items live under `<prefix>:<seq>`. Appending is one ETag
write of the head; the item key is written afterwards, and the next append (or a reader)
first writes the previous `last` if a crash left it out. So a crash never loses an item
and never leaves the head and the items disagreeing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from kaya787_kit.concurrency import EtagConflict
from kaya787_kit.state import DaprStateStore


def item_key(prefix: str, seq: int) -> str:
    return f"{prefix}:{seq:012d}"


async def materialise_last(state: DaprStateStore, prefix: str, head: dict[str, Any]) -> None:
    last = head.get("last")
    if last is None:
        return
    with contextlib.suppress(EtagConflict):  # already written: insert-only
        await state.save(item_key(prefix, int(last["seq"])), last, etag=None)


async def read_page(
    state: DaprStateStore,
    prefix: str,
    head: dict[str, Any],
    *,
    before: int | None,
    limit: int,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first: items with seq < `before` (all when None), and the next cursor."""
    count = int(head.get("count", 0))
    top = count if before is None else max(0, min(before, count))
    seqs = list(range(top - 1, max(-1, top - 1 - limit), -1))
    last = head.get("last")
    items: list[dict[str, Any]] = []
    for seq in seqs:
        if last is not None and int(last["seq"]) == seq:
            items.append(last)
            continue
        found = await state.get(item_key(prefix, seq))
        if found is not None:
            items.append(found.value)
    next_cursor = seqs[-1] if seqs and seqs[-1] > 0 else None
    return items, next_cursor
