"""Prometheus series of an app's circuit breakers, one label set per target.

kaya787_circuit_breaker_state is read from the breaker at each scrape (0 closed,
1 half-open, 2 open, as Dapr's dapr_resiliency_cb_state), so it turns half-open when the
cool-down ends even if no call came; the counters say how often it opened and how many
calls it answered at once instead of making them.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge
from prometheus_client.registry import Collector

from kaya787_kit.circuit_breaker import OPEN, STATE_VALUES, CircuitBreaker

_log = logging.getLogger("kaya787.circuit_breaker")


class CircuitBreakerMetrics:
    """The breakers' series and their listener (pass it to CircuitBreaker, then `watch`)."""

    def __init__(self, service: str) -> None:
        self._service = service
        # No registry here: the app's registry (create_service_app) takes them.
        self.state = Gauge(
            "kaya787_circuit_breaker_state",
            "State of the breaker on calls to a target: 0 closed, 1 half-open, 2 open.",
            ["service", "target"],
            registry=None,
        )
        self.opens = Counter(
            "kaya787_circuit_breaker_opens",
            "Times the breaker on calls to a target opened.",
            ["service", "target"],
            registry=None,
        )
        self.rejected = Counter(
            "kaya787_circuit_breaker_rejected",
            "Calls to a target the open breaker answered at once instead of making them.",
            ["service", "target"],
            registry=None,
        )

    def collectors(self) -> list[Collector]:
        return [self.state, self.opens, self.rejected]

    def watch(self, breaker: CircuitBreaker) -> None:
        """Serve `breaker`'s series from now on (present, at 0, from the first scrape)."""
        self.state.labels(self._service, breaker.target).set_function(
            lambda: STATE_VALUES[breaker.state]
        )
        self.opens.labels(self._service, breaker.target)
        self.rejected.labels(self._service, breaker.target)

    def on_change(self, target: str, old: str, new: str) -> None:
        if new == OPEN:
            self.opens.labels(self._service, target).inc()
        level = logging.WARNING if new == OPEN else logging.INFO
        _log.log(level, "circuit breaker on %s: %s -> %s", target, old, new)

    def on_reject(self, target: str) -> None:
        self.rejected.labels(self._service, target).inc()
