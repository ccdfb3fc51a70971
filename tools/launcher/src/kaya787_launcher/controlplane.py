"""The Dapr control plane as managed processes: Sentry (the CA), Placement and Scheduler.

Pure builders: each describes its process from what it is given and touches nothing; the
one folder a process needs (Scheduler's etcd data) is made by its prepare step, which only
`up`/`start` run.
"""

from __future__ import annotations

from pathlib import Path

from kaya787_launcher.devsecrets import ROOT_CERT, TRUST_DOMAIN
from kaya787_launcher.managed import Managed
from kaya787_launcher.paths import Layout
from kaya787_launcher.probes import http_ok
from kaya787_launcher.processes import ProcessSpec
from kaya787_launcher.topology import LOOPBACK, ControlPlanePorts

SENTRY_CONFIG = Path("dapr") / "sentry-config.yaml"


def _observability_flags(healthz: int, metrics: int) -> list[str]:
    return [
        "--healthz-port",
        str(healthz),
        "--healthz-listen-address",
        LOOPBACK,
        "--metrics-port",
        str(metrics),
        "--metrics-listen-address",
        LOOPBACK,
        "--log-as-json",
    ]


def _mtls_flags(layout: Layout, ports: ControlPlanePorts) -> list[str]:
    """Placement and Scheduler get their own certificates from Sentry."""
    return [
        "--tls-enabled",
        "--trust-anchors-file",
        str(layout.certs / ROOT_CERT),
        "--sentry-address",
        f"{LOOPBACK}:{ports.sentry}",
        "--trust-domain",
        TRUST_DOMAIN,
    ]


def _healthz(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/healthz"


def sentry(layout: Layout, ports: ControlPlanePorts, bin_dir: Path) -> Managed:
    argv = [
        str(bin_dir / "sentry"),
        "--config",
        str(layout.root / SENTRY_CONFIG),
        "--issuer-credentials",
        str(layout.certs),
        "--trust-domain",
        TRUST_DOMAIN,
        "--port",
        str(ports.sentry),
        "--listen-address",
        LOOPBACK,
        *_observability_flags(ports.sentry_healthz, ports.sentry_metrics),
    ]
    return Managed(
        ProcessSpec("sentry", argv, layout.root),
        http_ok(_healthz(ports.sentry_healthz)),
        {
            "sentry": ports.sentry,
            "sentry healthz": ports.sentry_healthz,
            "sentry metrics": ports.sentry_metrics,
        },
    )


def placement(layout: Layout, ports: ControlPlanePorts, bin_dir: Path) -> Managed:
    argv = [
        str(bin_dir / "placement"),
        "--port",
        str(ports.placement),
        "--listen-address",
        LOOPBACK,
        "--initial-cluster",
        f"dapr-placement-0={LOOPBACK}:{ports.placement_raft}",
        *_mtls_flags(layout, ports),
        *_observability_flags(ports.placement_healthz, ports.placement_metrics),
    ]
    return Managed(
        ProcessSpec("placement", argv, layout.root),
        http_ok(_healthz(ports.placement_healthz)),
        {
            "placement": ports.placement,
            "placement healthz": ports.placement_healthz,
            "placement metrics": ports.placement_metrics,
            "placement raft": ports.placement_raft,
        },
    )


def scheduler_data(layout: Layout) -> Path:
    return layout.data / "scheduler"


def scheduler(layout: Layout, ports: ControlPlanePorts, bin_dir: Path) -> Managed:
    data = scheduler_data(layout)
    argv = [
        str(bin_dir / "scheduler"),
        "--port",
        str(ports.scheduler),
        "--listen-address",
        LOOPBACK,
        "--etcd-data-dir",
        str(data),
        "--etcd-client-port",
        str(ports.scheduler_etcd_client),
        "--etcd-client-listen-address",
        LOOPBACK,
        "--etcd-initial-cluster",
        f"dapr-scheduler-server-0=http://{LOOPBACK}:{ports.scheduler_etcd_peer}",
        "--identity-directory-write",
        str(layout.run / "scheduler-identity"),
        *_mtls_flags(layout, ports),
        *_observability_flags(ports.scheduler_healthz, ports.scheduler_metrics),
    ]
    return Managed(
        ProcessSpec("scheduler", argv, layout.root),
        http_ok(_healthz(ports.scheduler_healthz)),
        {
            "scheduler": ports.scheduler,
            "scheduler healthz": ports.scheduler_healthz,
            "scheduler metrics": ports.scheduler_metrics,
            "scheduler etcd client": ports.scheduler_etcd_client,
            "scheduler etcd peer": ports.scheduler_etcd_peer,
        },
        prepare=lambda: data.mkdir(parents=True, exist_ok=True),
    )
