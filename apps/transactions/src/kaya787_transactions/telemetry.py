"""Workflow counters of transactions, served on its /metrics beside the kit's series."""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge
from prometheus_client.registry import Collector


class WorkflowMetrics:
    """Started, completed (by outcome) and in-flight saga instances of one workflow.

    In flight counts the instances this process started and has not seen finish: the API
    and the workflow worker share the process, but an instance resumed after a restart was
    started by an earlier one, so it is finished without ever being counted as in flight
    (the gauge never goes negative). Counters are per process, as Prometheus expects.
    """

    def __init__(self, service: str, workflow: str) -> None:
        self._service, self._workflow = service, workflow
        # No registry here: the app's registry (create_service_app) takes them.
        self.started = Counter(
            "kaya787_workflows_started",
            "Workflow instances scheduled by this process.",
            ["service", "workflow"],
            registry=None,
        )
        self.completed = Counter(
            "kaya787_workflows_completed",
            "Workflow instances that reached a final state, by outcome.",
            ["service", "workflow", "outcome"],
            registry=None,
        )
        self.in_flight = Gauge(
            "kaya787_workflows_in_flight",
            "Workflow instances started by this process and not finished yet.",
            ["service", "workflow"],
            registry=None,
        )
        # Series exist from the first scrape, so rate() and absent() behave from the start.
        self.started.labels(service, workflow)
        self.in_flight.labels(service, workflow)
        # The API's event loop starts instances, the worker's thread finishes them.
        self._lock = threading.Lock()
        self._open: set[str] = set()

    def collectors(self) -> list[Collector]:
        return [self.started, self.completed, self.in_flight]

    def started_one(self, instance_id: str) -> None:
        self.started.labels(self._service, self._workflow).inc()
        with self._lock:
            if instance_id in self._open:
                return
            self._open.add(instance_id)
        self.in_flight.labels(self._service, self._workflow).inc()

    def finished_one(self, instance_id: str, outcome: str | None) -> None:
        """`outcome` is None when the instance was already final (a retried last step)."""
        if outcome is not None:
            self.completed.labels(self._service, self._workflow, outcome).inc()
        with self._lock:
            if instance_id not in self._open:
                return
            self._open.discard(instance_id)
        self.in_flight.labels(self._service, self._workflow).dec()


class LedgerHealthMetrics:
    """What the reconciler sees and what a refused refund leaves behind (both alerted on)."""

    def __init__(self, service: str) -> None:
        self._service = service
        self.overdue = Gauge(
            "kaya787_transactions_overdue",
            "Transactions still pending past the reconciler's age limit, at its last pass.",
            ["service"],
            registry=None,
        )
        self.restarted = Counter(
            "kaya787_transactions_sagas_restarted",
            "Rail sagas the reconciler started again (gone or failed while pending).",
            ["service"],
            registry=None,
        )
        self.refunds_refused = Counter(
            "kaya787_transactions_refunds_refused",
            "Payouts whose refund the ledger refused: customer money is held.",
            ["service"],
            registry=None,
        )
        self.overdue.labels(service)
        self.restarted.labels(service)
        self.refunds_refused.labels(service)

    def collectors(self) -> list[Collector]:
        return [self.overdue, self.restarted, self.refunds_refused]

    def reconciled(self, overdue: int, restarted: int) -> None:
        self.overdue.labels(self._service).set(overdue)
        self.restarted.labels(self._service).inc(restarted)

    def refund_refused(self, transaction: object) -> None:
        self.refunds_refused.labels(self._service).inc()
