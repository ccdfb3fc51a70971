"""The soak's pure parts: outcomes in 30 s windows, the spans its bounds compare, and the
bound checks themselves (no I/O, no clock: the unit tests drive them with made-up runs).

Spans: a warm-up (load offered and checked for errors, money and finality like the rest, but
no reference for the bounds) comes first; the *reference* is the first five minutes after
it, or the first sixth of what follows it when that is shorter than 30 minutes; the *end*
is the last minute, or the last sixth of a run shorter than six minutes (at least one
window each). Latency compares the end's p99 with
the reference's, pooled over every transfer of each span (a p99 of 1,200 transfers, not
an average of window p99s). Memory compares each process's median RSS over the end with
its median over the same length of time ending where the reference ends: the baseline is
taken once the platform is warm (below), and a median over a minute of samples is not
moved by one garbage-collection cycle.

Why the baseline is not the first sample: during its first minutes under load a process
grows for reasons that stop - Python apps import what the first requests need and fill
their connection pools, SQLite and Redis warm their caches, Go's heap (daprd, Jaeger,
Prometheus) grows to the target its collector settles on - so growth from a cold start
says nothing about a leak. What still grows once the reference period is over grows with
time or with work done: a leak or an unbounded store.

Why a warm-up: the stores that keep a bounded window of what passed through them - Redis
Streams trimmed to `maxLenApprox` entries, Jaeger's in-memory store to `max_traces` - grow
until that window is full, at a pace set by the offered rate, and then stay. The warm-up
lets them fill (about 8 minutes at 20 transfers/s), so that growth measured after it is
growth beyond every cap.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

WINDOW_S = 30.0
REFERENCE_S = 300.0  # the first five minutes...
END_S = 60.0  # ...against the last minute
SHORT_RUN_SHARE = 6  # a shorter run compares its first sixth (and at most its last sixth)
LATENCY_TOLERANCE = 0.20
RSS_GROWTH_LIMIT = 0.10


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (`q` from 0 to 1); NaN when there is nothing to rank."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


NO_ANSWER = 0  # connection error or time-out
UNREADABLE = 1  # a 201 whose body is not the transfer (no HTTP status is 1)


def status_label(status: int) -> str:
    return {NO_ANSWER: "no answer", UNREADABLE: "201 without the transfer"}.get(status, str(status))


def errors_text(errors: Mapping[int, int]) -> str:
    """Errors by status as the reports print them: "no answer: 3, 503: 12", or "0"."""
    return ", ".join(f"{status_label(k)}: {n}" for k, n in sorted(errors.items())) or "0"


@dataclass(frozen=True)
class Outcome:
    """One transfer of the run, as the client saw it."""

    due_s: float  # when it was due, seconds from the run's start
    status: int  # HTTP status of the answer, NO_ANSWER or UNREADABLE
    accept_ms: float  # due -> answer; inf when none came
    state: str | None = None  # completed / failed / pending: the answer's, or found after
    final_ms: float | None = None  # due -> seen final in the run; None: not final in time
    transfer_id: str | None = None

    @property
    def error(self) -> bool:
        """Anything but an answer with the transfer in it: 4xx, 5xx, no answer."""
        return self.status != 201

    @property
    def final(self) -> bool:
        return self.state in ("completed", "failed")

    @property
    def accepted_ms(self) -> float | None:
        """Accept latency, for transfers that were accepted (an error has none)."""
        return None if self.error else self.accept_ms

    @property
    def until_final_ms(self) -> float:
        """Accept -> final; infinite for one not final in time (an error, still pending),
        so that more than 1 % of those make a p99 infinite rather than look fast."""
        return self.final_ms if self.final_ms is not None and not self.error else math.inf


@dataclass(frozen=True)
class Window:
    start_s: float
    offered: int
    completed: int  # in their answer (an error finished later is not counted)
    failed: int  # final in their answer, refused for funds: not an error
    errors: dict[int, int]  # by HTTP status (0: no answer)
    accept_p50_ms: float
    accept_p99_ms: float
    final_p99_ms: float


def windows(outcomes: Iterable[Outcome], run_s: float, width_s: float = WINDOW_S) -> list[Window]:
    """The run cut into windows by when each transfer was due (the last one may be short)."""
    count = max(1, math.ceil(run_s / width_s - 1e-9))
    grouped: list[list[Outcome]] = [[] for _ in range(count)]
    for outcome in outcomes:
        grouped[min(count - 1, max(0, int(outcome.due_s // width_s)))].append(outcome)
    result = []
    for index, group in enumerate(grouped):
        errors: dict[int, int] = {}
        for outcome in group:
            if outcome.error:
                errors[outcome.status] = errors.get(outcome.status, 0) + 1
        answered = [o for o in group if not o.error]
        result.append(
            Window(
                start_s=index * width_s,
                offered=len(group),
                completed=sum(o.state == "completed" for o in answered),
                failed=sum(o.state == "failed" for o in answered),
                errors=errors,
                accept_p50_ms=percentile((o.accept_ms for o in answered), 0.5),
                accept_p99_ms=percentile((o.accept_ms for o in answered), 0.99),
                final_p99_ms=percentile((o.until_final_ms for o in group), 0.99),
            )
        )
    return result


@dataclass(frozen=True)
class Spans:
    """Where the reference ends and where the end begins, seconds from the run's start."""

    reference_end_s: float
    end_s: float  # the length of the end span (and of the RSS baseline's)
    run_s: float
    start_s: float = 0.0  # where the reference begins: the end of the warm-up

    @property
    def end_start_s(self) -> float:
        return self.run_s - self.end_s


def spans(run_s: float, width_s: float = WINDOW_S, warmup_s: float = 0.0) -> Spans:
    """Whole windows after the warm-up: the reference min(5 min, measured/6) long, the end
    min(1 min, measured/6)."""
    measured = run_s - warmup_s
    share = measured / SHORT_RUN_SHARE
    reference = max(1, round(min(REFERENCE_S, share) / width_s)) * width_s
    end = max(1, round(min(END_S, share) / width_s)) * width_s
    return Spans(warmup_s + min(reference, measured), min(end, measured), run_s, warmup_s)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


def latency_check(
    outcomes: Sequence[Outcome],
    span: Spans,
    what: str,
    value: Callable[[Outcome], float | None],
    tolerance: float = LATENCY_TOLERANCE,
) -> Check:
    """The end's p99 within `tolerance` of the reference's, either way: a p99 that fell by
    more says the reference was disturbed (other load on the machine), so the comparison
    would prove nothing either. `value` None leaves an outcome out; infinite counts it as
    slower than anything."""

    def p99(start: float, stop: float) -> float:
        picked = (value(o) for o in outcomes if start <= o.due_s < stop)
        return percentile((v for v in picked if v is not None), 0.99)

    reference = p99(span.start_s, span.reference_end_s)
    end = p99(span.end_start_s, math.inf)
    first = f"first {_minutes(span.reference_end_s - span.start_s)}"
    if span.start_s:
        first += f" after {_minutes(span.start_s)} of warm-up"
    name = f"{what} p99, last {_minutes(span.end_s)} vs {first}"
    if math.isnan(reference) or math.isnan(end) or not 0 < reference < math.inf:
        return Check(
            name, False, f"nothing to compare (reference {reference:.0f} ms, end {end:.0f} ms)"
        )
    change = end / reference - 1
    return Check(
        name,
        abs(change) <= tolerance,
        f"{end:.0f} ms vs {reference:.0f} ms ({change:+.0%}; bound ±{tolerance:.0%})",
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


@dataclass(frozen=True)
class Sample:
    """Every process's RSS and CPU so far at one moment of the run."""

    t_s: float
    rss: Mapping[str, int]  # bytes, by process (its descendants included)
    cpu_s: Mapping[str, float] = field(default_factory=dict)


def median_rss(samples: Iterable[Sample], name: str, start_s: float, stop_s: float) -> float:
    values = [s.rss.get(name, 0) for s in samples if start_s <= s.t_s <= stop_s]
    return statistics.median(values) if values else math.nan


@dataclass(frozen=True)
class Growth:
    name: str
    baseline: float  # bytes: median over the end of the reference period
    end: float  # bytes: median over the end span
    peak: int

    @property
    def change(self) -> float:
        return self.end / self.baseline - 1 if self.baseline > 0 else math.inf


def rss_growth(samples: Sequence[Sample], span: Spans) -> list[Growth]:
    names = sorted({name for s in samples for name in s.rss})
    start = span.reference_end_s - span.end_s
    return [
        Growth(
            name,
            median_rss(samples, name, start, span.reference_end_s),
            median_rss(samples, name, span.end_start_s, span.run_s),
            max(s.rss.get(name, 0) for s in samples),
        )
        for name in names
    ]


def rss_checks(growths: Iterable[Growth], limit: float = RSS_GROWTH_LIMIT) -> list[Check]:
    return [
        Check(
            f"RSS of {g.name}",
            g.change < limit,
            f"{g.baseline / 2**20:.1f} -> {g.end / 2**20:.1f} MiB ({g.change:+.1%}; "
            f"bound < {limit:.0%})",
        )
        for g in growths
    ]


def error_check(outcomes: Iterable[Outcome]) -> Check:
    errors: dict[int, int] = {}
    total = 0
    for outcome in outcomes:
        total += 1
        if outcome.error:
            errors[outcome.status] = errors.get(outcome.status, 0) + 1
    return Check("errors", not errors, f"{errors_text(errors)} of {total} transfers")


def finality_check(outcomes: Iterable[Outcome]) -> Check:
    """Every transfer completed or failed (for funds) in the end, late ones included."""
    listed = list(outcomes)
    open_ = [o for o in listed if not o.final]
    late = sum(o.final and o.error for o in listed)
    return Check(
        "every transfer final",
        not open_,
        f"{len(listed) - len(open_)} of {len(listed)} final"
        + (f" ({late} only after the run, by the same Idempotency-Key)" if late else ""),
    )
