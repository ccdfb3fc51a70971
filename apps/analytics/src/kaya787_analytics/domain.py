"""Pure aggregation rules: no FastAPI, no Dapr."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kaya787_kit.timestamps import parse_time

from kaya787_analytics.latency import LatencyHistogram

# Per-minute buckets older than this are dropped (and expire in the store).
RETENTION_MINUTES = 24 * 60


def minute_key(moment: datetime) -> str:
    """The UTC minute a moment falls in, as its API spelling "2026-12-01T10:05:00Z"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00Z")


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def retention_cutoff(now: datetime) -> str:
    """The oldest minute still retained at `now`."""
    return minute_key(floor_minute(now) - timedelta(minutes=RETENTION_MINUTES - 1))


@dataclass(frozen=True)
class Delta:
    """What one domain event adds to the aggregates."""

    occurred_at: datetime
    transfers_completed: int = 0
    transfers_failed: int = 0
    deposits_completed: int = 0
    users_registered: int = 0
    accounts_opened: int = 0
    currency: str | None = None
    amount: int = 0
    latency_ms: float | None = None


def minute_of(delta: Delta, now: datetime) -> str | None:
    """The minute an event counts in, None when that is past the retention window.

    A time ahead of `now` (a producer's fast clock) counts in the current minute, so a
    bogus future stamp cannot push every real minute out of the retention window.
    """
    key = minute_key(min(delta.occurred_at, now))
    return key if key >= retention_cutoff(now) else None


def _add_volume(volume: Mapping[str, int], delta: Delta) -> dict[str, int]:
    out = dict(volume)
    if delta.currency is not None and delta.amount:
        out[delta.currency] = out.get(delta.currency, 0) + delta.amount
    return out


@dataclass(frozen=True)
class Overview:
    """Totals since the platform started; amounts in integer minor units per currency."""

    transfers_completed: int = 0
    transfers_failed: int = 0
    deposits_completed: int = 0
    volume: dict[str, int] = field(default_factory=dict)
    users_registered: int = 0
    as_of: str | None = None
    accounts_opened: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)

    def plus(self, delta: Delta) -> Overview:
        stamp = delta.occurred_at.isoformat().replace("+00:00", "Z")
        return replace(
            self,
            transfers_completed=self.transfers_completed + delta.transfers_completed,
            transfers_failed=self.transfers_failed + delta.transfers_failed,
            deposits_completed=self.deposits_completed + delta.deposits_completed,
            users_registered=self.users_registered + delta.users_registered,
            accounts_opened=self.accounts_opened + delta.accounts_opened,
            volume=_add_volume(self.volume, delta),
            as_of=_later(self.as_of, stamp),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "transfers_completed": self.transfers_completed,
            "transfers_failed": self.transfers_failed,
            "deposits_completed": self.deposits_completed,
            "volume": dict(self.volume),
            "users_registered": self.users_registered,
            "as_of": self.as_of,
            "accounts_opened": self.accounts_opened,
            "dead_letters": dict(self.dead_letters),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Overview:
        return cls(
            transfers_completed=int(data.get("transfers_completed", 0)),
            transfers_failed=int(data.get("transfers_failed", 0)),
            deposits_completed=int(data.get("deposits_completed", 0)),
            volume={str(k): int(v) for k, v in dict(data.get("volume", {})).items()},
            users_registered=int(data.get("users_registered", 0)),
            as_of=data.get("as_of"),
            accounts_opened=int(data.get("accounts_opened", 0)),
            dead_letters={str(k): int(v) for k, v in dict(data.get("dead_letters", {})).items()},
        )


def _later(a: str | None, b: str) -> str:
    # Both are UTC ISO strings from the same writer, so string order is time order; an
    # unparseable older value loses to a parseable one.
    if a is None or parse_time(a) is None:
        return b
    return max(a, b, key=lambda s: parse_time(s) or datetime.min.replace(tzinfo=UTC))


@dataclass(frozen=True)
class MinuteBucket:
    """Counts, volume and transfer latencies of the events that occurred in one minute."""

    transfers_completed: int = 0
    transfers_failed: int = 0
    deposits_completed: int = 0
    users_registered: int = 0
    accounts_opened: int = 0
    volume: Mapping[str, int] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def plus(self, delta: Delta) -> MinuteBucket:
        latency = self.latency
        if delta.latency_ms is not None:
            latency = latency.record(delta.latency_ms)
        return MinuteBucket(
            transfers_completed=self.transfers_completed + delta.transfers_completed,
            transfers_failed=self.transfers_failed + delta.transfers_failed,
            deposits_completed=self.deposits_completed + delta.deposits_completed,
            users_registered=self.users_registered + delta.users_registered,
            accounts_opened=self.accounts_opened + delta.accounts_opened,
            volume=_add_volume(self.volume, delta),
            latency=latency,
        )

    def merge(self, other: MinuteBucket) -> MinuteBucket:
        """Both buckets' events, as if counted into one."""
        volume = dict(self.volume)
        for currency, amount in other.volume.items():
            volume[currency] = volume.get(currency, 0) + amount
        return MinuteBucket(
            transfers_completed=self.transfers_completed + other.transfers_completed,
            transfers_failed=self.transfers_failed + other.transfers_failed,
            deposits_completed=self.deposits_completed + other.deposits_completed,
            users_registered=self.users_registered + other.users_registered,
            accounts_opened=self.accounts_opened + other.accounts_opened,
            volume=volume,
            latency=self.latency.merge(other.latency),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "transfers_completed": self.transfers_completed,
            "transfers_failed": self.transfers_failed,
            "deposits_completed": self.deposits_completed,
            "users_registered": self.users_registered,
            "accounts_opened": self.accounts_opened,
            "volume": dict(self.volume),
            "latency": self.latency.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MinuteBucket:
        return cls(
            transfers_completed=int(data.get("transfers_completed", 0)),
            transfers_failed=int(data.get("transfers_failed", 0)),
            deposits_completed=int(data.get("deposits_completed", 0)),
            users_registered=int(data.get("users_registered", 0)),
            accounts_opened=int(data.get("accounts_opened", 0)),
            volume={str(k): int(v) for k, v in dict(data.get("volume", {})).items()},
            latency=LatencyHistogram.from_json(data.get("latency")),
        )


@dataclass(frozen=True)
class Aggregates:
    """Totals, per-minute buckets, latencies and the ids of the events they include.

    Which events were counted is not kept here but as one insert-only key per event id,
    written in the same state transaction as this document (writer.py): exactly once for
    as long as those keys live, with no window to fall out of. Nor are the minutes kept
    with the totals: each minute is its own key (adapters.py), so counting an event reads
    and writes the totals and its one minute, not a day of them; an instance holds the
    minutes it was loaded with (RETENTION_MINUTES at most, fixed-size histograms).
    """

    overview: Overview = field(default_factory=Overview)
    counted: int = 0  # events counted so far (the live view's "has it changed")
    minutes: Mapping[str, MinuteBucket] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def tick(self) -> Aggregates:
        return replace(self, counted=self.counted + 1)

    def count(self, delta: Delta, now: datetime) -> Aggregates:
        """Add one event: to the totals always, to its minute if that is still retained.

        Holds the minutes it was given (the writer loads only those its events fall in),
        less any that fell out of the retention window.
        """
        latency = self.latency
        if delta.latency_ms is not None:
            latency = latency.record(delta.latency_ms)
        minutes = dict(self.minutes)
        key = minute_of(delta, now)
        if key is not None:
            minutes[key] = minutes.get(key, MinuteBucket()).plus(delta)
        cutoff = retention_cutoff(now)
        minutes = {k: v for k, v in minutes.items() if k >= cutoff}
        return replace(self, overview=self.overview.plus(delta), minutes=minutes, latency=latency)

    def head(self) -> Aggregates:
        """The totals alone: what is stored under one key (each minute has its own)."""
        return replace(self, minutes={})

    def count_dead_letter(self, topic: str) -> Aggregates:
        letters = dict(self.overview.dead_letters)
        letters[topic] = letters.get(topic, 0) + 1
        return replace(self, overview=replace(self.overview, dead_letters=letters))

    def public_overview(self) -> dict[str, Any]:
        """The API's overview: the contract's fields first, then the additions."""
        return {**self.overview.to_json(), "transfer_latency_ms": self.latency.percentiles_ms()}

    def to_json(self) -> dict[str, Any]:
        return {
            "overview": self.overview.to_json(),
            "counted": self.counted,
            "minutes": {k: v.to_json() for k, v in sorted(self.minutes.items())},
            "latency": self.latency.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Aggregates:
        # Documents written before minutes and latency existed load with them empty.
        return cls(
            overview=Overview.from_json(dict(data.get("overview", {}))),
            counted=int(data.get("counted", 0)),
            minutes={
                str(k): MinuteBucket.from_json(v) for k, v in dict(data.get("minutes", {})).items()
            },
            latency=LatencyHistogram.from_json(data.get("latency")),
        )


def posting_delta(
    kind: str,
    step: str,
    committed: bool,
    amount: int,
    currency: str,
    occurred_at: datetime,
    started_at: datetime | None = None,
) -> Delta | None:
    """What a ledger posting adds, None for steps the overview does not count.

    A transfer is one posting: committed is a completed transfer (with its latency from
    acceptance), rejected a failed one. A deposit counts when its credit is posted. Holds,
    settlements and refunds of payouts move money between system accounts and customers
    but are not in the overview.
    """
    if kind == "transfer" and step == "transfer":
        latency_ms = None
        if committed and started_at is not None:
            latency_ms = (occurred_at - started_at).total_seconds() * 1000.0
        return Delta(
            occurred_at=occurred_at,
            currency=currency if committed else None,
            amount=amount if committed else 0,
            latency_ms=latency_ms,
            transfers_completed=int(committed),
            transfers_failed=int(not committed),
        )
    if kind == "deposit" and step == "deposit" and committed:
        return Delta(
            occurred_at=occurred_at, currency=currency, amount=amount, deposits_completed=1
        )
    return None


def user_registered_delta(occurred_at: datetime) -> Delta:
    return Delta(occurred_at=occurred_at, users_registered=1)


def account_opened_delta(occurred_at: datetime) -> Delta:
    return Delta(occurred_at=occurred_at, accounts_opened=1)
