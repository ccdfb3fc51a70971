"""The soak's two plots: latency per window over time (with the CPU beside it, the platform's
and the machine's other load), and every process's RSS over time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.bench.soak_stats import (
    LATENCY_TOLERANCE,
    RSS_GROWTH_LIMIT,
    WINDOW_S,
    Sample,
    Spans,
    Window,
    median_rss,
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mark_spans(axis: Any, span: Spans) -> None:
    if span.start_s:
        axis.axvspan(0, span.start_s / 60, color="tab:gray", alpha=0.07)  # warm-up
    axis.axvspan(span.start_s / 60, span.reference_end_s / 60, color="tab:green", alpha=0.07)
    axis.axvspan(span.end_start_s / 60, span.run_s / 60, color="tab:orange", alpha=0.1)


def plot_latency(
    windows: Sequence[Window],
    cores: Sequence[tuple[float, float, float, float]],
    span: Spans,
    path: Path,
) -> None:
    """`cores`: (t_s, platform, load client, other load) as the samples saw them."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    middle = [(w.start_s + WINDOW_S / 2) / 60 for w in windows]
    top.plot(middle, [w.accept_p50_ms for w in windows], marker=".", label="accept p50")
    top.plot(middle, [w.accept_p99_ms for w in windows], marker=".", label="accept p99")
    top.plot(middle, [w.final_p99_ms for w in windows], linestyle="--", label="accept→final p99")
    errors = [(m, sum(w.errors.values())) for m, w in zip(middle, windows, strict=True)]
    if any(n for _, n in errors):
        twin = top.twinx()
        twin.bar([m for m, _ in errors], [n for _, n in errors], width=0.3, color="tab:red")
        twin.set_ylabel("errors per window", color="tab:red")
    _mark_spans(top, span)
    top.set_yscale("log")
    top.set_ylabel("ms (per 30 s window)")
    top.set_title(
        "Soak: latency over time (grey: warm-up, green: reference, orange: end; "
        f"bound ±{LATENCY_TOLERANCE:.0%})"
    )
    top.legend(loc="upper left")
    minutes = [t / 60 for t, *_ in cores]
    for index, label in enumerate(("platform", "load client", "other load"), start=1):
        bottom.plot(minutes, [c[index] for c in cores], label=label)
    bottom.set_ylabel("CPU cores (last 30 s)")
    bottom.set_xlabel("minutes")
    bottom.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_rss(
    samples: Sequence[Sample],
    client: Sequence[tuple[float, int]],
    span: Spans,
    path: Path,
) -> None:
    """Top: RSS of every process (MiB, log). Bottom: each one relative to its baseline."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 9), sharex=True)
    minutes = [s.t_s / 60 for s in samples]
    names = sorted({n for s in samples for n in s.rss}, key=lambda n: -samples[-1].rss.get(n, 0))
    start = span.reference_end_s - span.end_s
    for name in names:
        values = [s.rss.get(name, 0) for s in samples]
        (line,) = top.plot(minutes, [v / 2**20 for v in values], label=name)
        baseline = median_rss(samples, name, start, span.reference_end_s)
        if baseline > 0 and not math.isnan(baseline):
            bottom.plot(minutes, [100 * (v / baseline - 1) for v in values], color=line.get_color())
    top.plot(
        [t / 60 for t, _ in client],
        [v / 2**20 for _, v in client],
        color="black",
        linestyle=":",
        label="load client (not bounded)",
    )
    for axis in (top, bottom):
        _mark_spans(axis, span)
    top.set_ylabel("RSS MiB (children included)")
    top.set_title(
        "Soak: RSS of every process over time (grey: warm-up, green: reference, whose last "
        "minute is the baseline; orange: end)"
    )
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    bottom.axhline(100 * RSS_GROWTH_LIMIT, color="tab:red", linestyle="--", linewidth=1)
    bottom.axhline(0, color="grey", linewidth=0.5)
    bottom.set_ylabel(f"% vs baseline (bound < {RSS_GROWTH_LIMIT:.0%})")
    bottom.set_xlabel("minutes")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
