"""Pure aggregation rules: no FastAPI, no Dapr."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

# How many recent event ids are remembered to drop redeliveries. Brokers redeliver what
# was in flight (seconds to minutes of traffic), far fewer events than this.
DEDUPE_WINDOW = 5000


@dataclass(frozen=True)
class Overview:
    """Totals since the platform started; amounts in integer minor units per currency."""

    transfers_completed: int = 0
    transfers_failed: int = 0
    deposits_completed: int = 0
    volume: dict[str, int] = field(default_factory=dict)
    users_registered: int = 0
    as_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "transfers_completed": self.transfers_completed,
            "transfers_failed": self.transfers_failed,
            "deposits_completed": self.deposits_completed,
            "volume": dict(self.volume),
            "users_registered": self.users_registered,
            "as_of": self.as_of,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Overview:
        return cls(
            transfers_completed=int(data.get("transfers_completed", 0)),
            transfers_failed=int(data.get("transfers_failed", 0)),
            deposits_completed=int(data.get("deposits_completed", 0)),
            volume={str(k): int(v) for k, v in dict(data.get("volume", {})).items()},
            users_registered=int(data.get("users_registered", 0)),
            as_of=data.get("as_of"),
        )


@dataclass(frozen=True)
class Aggregates:
    """The overview together with the ids of the events it already includes.

    Both live in one document so that "count it" and "remember it was counted" are a
    single-key write: atomic under an ETag on every state store, Redis included (whose
    multi-key transactions do not roll back).
    """

    overview: Overview = field(default_factory=Overview)
    recent_event_ids: tuple[str, ...] = ()

    def includes(self, event_id: str) -> bool:
        return event_id in self.recent_event_ids

    def with_event(self, event_id: str, overview: Overview) -> Aggregates:
        ids = (*self.recent_event_ids, event_id)[-DEDUPE_WINDOW:]
        return Aggregates(overview=overview, recent_event_ids=ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "overview": self.overview.to_json(),
            "recent_event_ids": list(self.recent_event_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Aggregates:
        return cls(
            overview=Overview.from_json(dict(data.get("overview", {}))),
            recent_event_ids=tuple(str(i) for i in data.get("recent_event_ids", [])),
        )


def _later(a: str | None, b: str) -> str:
    return max(filter(None, (a, b)), default=b)


def count_transaction(
    overview: Overview, event_type: str, amount: int, currency: str, occurred_at: str
) -> Overview:
    """Completed transfers and deposits add their amount to the currency's volume."""
    volume = dict(overview.volume)
    if event_type.endswith("-completed.v1") and (
        "transfer" in event_type or "deposit" in event_type
    ):
        volume[currency] = volume.get(currency, 0) + amount
    return replace(
        overview,
        transfers_completed=overview.transfers_completed
        + (event_type == "transactions.transfer-completed.v1"),
        transfers_failed=overview.transfers_failed
        + (event_type == "transactions.transfer-failed.v1"),
        deposits_completed=overview.deposits_completed
        + (event_type == "transactions.deposit-completed.v1"),
        volume=volume,
        as_of=_later(overview.as_of, occurred_at),
    )


def count_user_registered(overview: Overview, occurred_at: str) -> Overview:
    return replace(
        overview,
        users_registered=overview.users_registered + 1,
        as_of=max(filter(None, (overview.as_of, occurred_at)), default=occurred_at),
    )
