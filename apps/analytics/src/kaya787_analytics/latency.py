"""Transfer completion latency as a fixed log-scale histogram: bounded, mergeable, replayable.

Method (why not a reservoir): a histogram's size does not grow with traffic, two of them
add up exactly (per-minute ones merge into a window), and the same events always give the
same document, which a random reservoir would not. Buckets grow by 2^(1/4) (~19 %): bucket 0
holds [0, 1 ms), bucket i >= 1 holds [2^((i-1)/4), 2^(i/4)) ms, the last one (MAX_INDEX) everything
from 2^24 ms (~4.7 h) up. A quantile q is the nearest-rank sample k = ceil(q * n),
placed by linear interpolation inside its bucket and clamped to the exact min and max seen:
its error is below one bucket width (< 19 % relative), and a single sample is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STEPS_PER_DOUBLING = 4
MAX_INDEX = 24 * STEPS_PER_DOUBLING + 1
QUANTILES = (0.5, 0.95, 0.99)


def bucket_index(ms: float) -> int:
    if ms < 1.0:
        return 0
    # log2 is exact on powers of two, so 2 ms lands at the start of its bucket, not the end.
    return min(MAX_INDEX, 1 + math.floor(STEPS_PER_DOUBLING * math.log2(ms)))


def bucket_bounds(index: int) -> tuple[float, float]:
    if index == 0:
        return 0.0, 1.0
    low = 2.0 ** ((index - 1) / STEPS_PER_DOUBLING)
    high = math.inf if index == MAX_INDEX else 2.0 ** (index / STEPS_PER_DOUBLING)
    return low, high


@dataclass(frozen=True)
class LatencyHistogram:
    counts: Mapping[int, int] = field(default_factory=dict)
    min_ms: float | None = None
    max_ms: float | None = None
    sum_ms: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def record(self, ms: float) -> LatencyHistogram:
        ms = max(0.0, ms)  # a finish "before" its start is clock skew between hosts: 0
        counts = dict(self.counts)
        index = bucket_index(ms)
        counts[index] = counts.get(index, 0) + 1
        return LatencyHistogram(
            counts=counts,
            min_ms=ms if self.min_ms is None else min(self.min_ms, ms),
            max_ms=ms if self.max_ms is None else max(self.max_ms, ms),
            sum_ms=self.sum_ms + ms,
        )

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        counts = dict(self.counts)
        for index, n in other.counts.items():
            counts[index] = counts.get(index, 0) + n
        mins = [m for m in (self.min_ms, other.min_ms) if m is not None]
        maxes = [m for m in (self.max_ms, other.max_ms) if m is not None]
        return LatencyHistogram(
            counts=counts,
            min_ms=min(mins, default=None),
            max_ms=max(maxes, default=None),
            sum_ms=self.sum_ms + other.sum_ms,
        )

    def quantile(self, q: float) -> float | None:
        """The estimated q-quantile in ms (see the module docstring); None without samples."""
        if not 0.0 < q <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {q}")
        total = self.count
        if total == 0 or self.min_ms is None or self.max_ms is None:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index in sorted(self.counts):
            n = self.counts[index]
            if seen + n >= rank:
                low, high = bucket_bounds(index)
                high = min(high, self.max_ms)
                estimate = low + (high - low) * (rank - seen) / n
                return min(self.max_ms, max(self.min_ms, estimate))
            seen += n
        return self.max_ms  # unreachable while counts sum to total

    def percentiles_ms(self) -> dict[str, float | None]:
        """{"p50": ms, "p95": ms, "p99": ms}, rounded to 0.1 ms; None without samples."""
        out: dict[str, float | None] = {}
        for q in QUANTILES:
            value = self.quantile(q)
            out[f"p{round(q * 100)}"] = None if value is None else round(value, 1)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": {str(i): n for i, n in sorted(self.counts.items())},
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "sum_ms": self.sum_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> LatencyHistogram:
        if not data:
            return cls()
        counts = {int(i): int(n) for i, n in dict(data.get("counts", {})).items() if int(n) > 0}
        low, high = data.get("min_ms"), data.get("max_ms")
        return cls(
            counts=counts,
            min_ms=None if low is None else float(low),
            max_ms=None if high is None else float(high),
            sum_ms=float(data.get("sum_ms", 0.0)),
        )
