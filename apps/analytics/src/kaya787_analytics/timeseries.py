"""Per-minute series read from the aggregates: which metrics exist, which windows are valid."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kaya787_analytics.domain import (
    RETENTION_MINUTES,
    Aggregates,
    MinuteBucket,
    floor_minute,
    minute_key,
)

DEFAULT_WINDOW_MINUTES = 60
COUNT_METRICS = (
    "transfers_completed",
    "transfers_failed",
    "deposits_completed",
    "users_registered",
    "accounts_opened",
)
LATENCY_METRICS = {
    "transfer_latency_p50_ms": 0.5,
    "transfer_latency_p95_ms": 0.95,
    "transfer_latency_p99_ms": 0.99,
}
VOLUME_PREFIX = "volume."
VALID_METRICS = (*COUNT_METRICS, *LATENCY_METRICS, f"{VOLUME_PREFIX}<ISO 4217 code, e.g. USD>")
VALID_WINDOWS = f"1..{RETENTION_MINUTES} minutes: '15', '60m' or '24h'"

_WINDOW = re.compile(r"^(\d{1,5})([mh]?)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

Reader = Callable[[MinuteBucket], int | None]


class QueryError(ValueError):
    """A timeseries query the API must refuse; says which parameter and what is valid."""

    def __init__(self, parameter: str, detail: str, valid: str | tuple[str, ...]) -> None:
        super().__init__(detail)
        self.parameter, self.detail, self.valid = parameter, detail, valid


def parse_window(raw: str | None) -> int:
    """Minutes from "15", "60m" or "24h"; QueryError outside 1..RETENTION_MINUTES."""
    if raw is None or raw == "":
        return DEFAULT_WINDOW_MINUTES
    match = _WINDOW.match(raw.strip())
    if match is None:
        raise QueryError("window", f"window {raw[:20]!r} is not a duration", VALID_WINDOWS)
    minutes = int(match.group(1)) * (60 if match.group(2) == "h" else 1)
    if not 1 <= minutes <= RETENTION_MINUTES:
        raise QueryError("window", f"window {raw!r} is outside the retained range", VALID_WINDOWS)
    return minutes


def _latency_reader(q: float) -> Reader:
    def read(bucket: MinuteBucket) -> int | None:
        value = bucket.latency.quantile(q)
        return None if value is None else round(value)

    return read


def _volume_reader(currency: str) -> Reader:
    def read(bucket: MinuteBucket) -> int | None:
        return bucket.volume.get(currency, 0)

    return read


def _count_reader(name: str) -> Reader:
    def read(bucket: MinuteBucket) -> int | None:
        value: int = getattr(bucket, name)
        return value

    return read


def reader_for(metric: str | None) -> Reader:
    if metric in COUNT_METRICS:
        return _count_reader(metric)
    if metric in LATENCY_METRICS:
        return _latency_reader(LATENCY_METRICS[metric])
    if metric and metric.startswith(VOLUME_PREFIX):
        currency = metric.removeprefix(VOLUME_PREFIX)
        if _CURRENCY.match(currency):
            return _volume_reader(currency)
    shown = "(missing)" if not metric else repr(metric[:40])
    raise QueryError("metric", f"unknown metric {shown}", VALID_METRICS)


def minutes_ending_at(now: datetime, window: int) -> list[str]:
    last = floor_minute(now)
    return [minute_key(last - timedelta(minutes=window - 1 - i)) for i in range(window)]


@dataclass(frozen=True)
class Series:
    metric: str
    window_minutes: int
    points: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "window_minutes": self.window_minutes, "series": self.points}


def series(aggregates: Aggregates, metric: str, window: int, now: datetime) -> Series:
    """One point per minute, oldest first, ending with the current minute.

    Minutes without events read as 0 (counts, volume) or None (latency: no transfer, no
    latency, which 0 ms would misstate).
    """
    read = reader_for(metric)
    empty = MinuteBucket()
    points = [
        {"minute": key, "value": read(aggregates.minutes.get(key, empty))}
        for key in minutes_ending_at(now, window)
    ]
    return Series(metric, window, points)


def recent_minutes(aggregates: Aggregates, now: datetime, window: int) -> list[dict[str, Any]]:
    """Every per-minute figure of the last `window` minutes, for the live dashboard."""
    empty = MinuteBucket()
    out = []
    for key in minutes_ending_at(now, window):
        bucket = aggregates.minutes.get(key, empty)
        out.append(
            {
                "minute": key,
                **{name: getattr(bucket, name) for name in COUNT_METRICS},
                "volume": dict(bucket.volume),
                "transfer_latency_ms": bucket.latency.percentiles_ms(),
            }
        )
    return out
