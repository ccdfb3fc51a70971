"""Business KPIs on /metrics, read from the live view: collect() never waits on I/O."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, Metric, SummaryMetricFamily

from kaya787_analytics.domain import Aggregates
from kaya787_analytics.events import DOMAIN_TOPICS
from kaya787_analytics.latency import QUANTILES
from kaya787_analytics.live import LiveView

LATENCY = "kaya787_analytics_transfer_latency_seconds"


class KpiCollector:
    """A prometheus_client Collector over the newest aggregates this replica has seen.

    The totals are counters: they only grow, so rate() and increase() work on them (a
    replica that has not loaded the document yet reports 0, which Prometheus reads as a
    counter reset and tolerates).
    """

    def __init__(self, view: LiveView) -> None:
        self._view = view

    def describe(self) -> Iterable[Metric]:
        # Names only (the registry refuses duplicates by them); samples come from collect().
        return _families(Aggregates())

    def collect(self) -> Iterable[Metric]:
        return _families(self._view.aggregates)


def _families(aggregates: Aggregates) -> list[Metric]:
    overview = aggregates.overview
    transfers = CounterMetricFamily(
        "kaya787_analytics_transfers",
        "Transfers that reached a final state, by outcome.",
        labels=["outcome"],
    )
    transfers.add_metric(["completed"], overview.transfers_completed)
    transfers.add_metric(["failed"], overview.transfers_failed)
    deposits = CounterMetricFamily(
        "kaya787_analytics_deposits", "Completed deposits.", value=overview.deposits_completed
    )
    volume = CounterMetricFamily(
        "kaya787_analytics_volume_minor_units",
        "Money moved by completed transfers and deposits, in minor units of the currency.",
        labels=["currency"],
    )
    for currency, amount in sorted(overview.volume.items()):
        volume.add_metric([currency], amount)
    users = CounterMetricFamily(
        "kaya787_analytics_users_registered", "Registered users.", value=overview.users_registered
    )
    accounts = CounterMetricFamily(
        "kaya787_analytics_accounts_opened", "Opened accounts.", value=overview.accounts_opened
    )
    dead = CounterMetricFamily(
        "kaya787_analytics_dead_letters",
        "Messages Dapr moved to analytics' dead-letter topics, by their original topic.",
        labels=["topic"],
    )
    # Every domain topic has a series from the start, so an alert sees it go 0 -> 1.
    for topic, n in sorted(({t: 0 for t in DOMAIN_TOPICS} | overview.dead_letters).items()):
        dead.add_metric([topic], n)
    # A summary, not a gauge: Prometheus tooling (promtool) refuses a "quantile" label on
    # anything else. Same series {quantile=...}, plus the exact _count and _sum.
    histogram = aggregates.latency
    latency = SummaryMetricFamily(
        LATENCY,
        "Transfer completion latency (created to finished) over all completed transfers; "
        "quantiles estimated from a log-scale histogram (< 19 % error).",
        count_value=histogram.count,
        sum_value=histogram.sum_ms / 1000.0,
    )
    for q in QUANTILES:
        ms = histogram.quantile(q)
        if ms is not None:
            latency.add_sample(LATENCY, {"quantile": str(q)}, ms / 1000.0)
    return [transfers, deposits, volume, users, accounts, dead, latency]
