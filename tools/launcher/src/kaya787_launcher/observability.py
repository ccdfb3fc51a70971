"""Jaeger (traces) and Prometheus (metrics) for the local platform.

Both are plain processes on loopback, like the rest of the stack: Jaeger v2 built from its
Go module by tools/build-jaeger.sh, Prometheus from Debian. Prometheus' config is rendered
from the topology at start, so every app, sidecar and control-plane process that runs is a
target and nothing else is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kaya787_launcher.managed import Managed, program
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.probes import http_ok
from kaya787_launcher.processes import ProcessSpec
from kaya787_launcher.topology import LOOPBACK, ControlPlanePorts, RunFile

# Jaeger's ports; observability/jaeger.yaml binds exactly these (a unit test checks).
JAEGER_OTLP_GRPC_PORT = 4317
JAEGER_OTLP_HTTP_PORT = 4318
JAEGER_QUERY_PORT = 16686
JAEGER_QUERY_GRPC_PORT = 16685
JAEGER_HEALTH_PORT = 13133
JAEGER_METRICS_PORT = 8888
PROMETHEUS_PORT = 9090

JAEGER_CONFIG = Path("observability") / "jaeger.yaml"
RULES_FILE = Path("observability") / "prometheus" / "rules.yml"
SCRAPE_INTERVAL = "5s"
# Below the interval, as Prometheus requires; a loaded 2-core machine still answers in time.
SCRAPE_TIMEOUT = "4s"
# A dev store: enough for a session's dashboards and the alert windows (<= 30m).
RETENTION = "6h"

# Job names: the alert rules and dashboards select on these.
APP_JOB = "kaya787-app"
SIDECAR_JOB = "dapr-sidecar"

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_JOB = re.compile(r"^[a-zA-Z0-9_.-]+$")


def tools_bin_dir() -> Path:
    """Where tools/build-jaeger.sh (and install-k8s-tools.sh) put their binaries."""
    return Path(os.environ.get("KAYA787_TOOLS") or Path.home() / ".cache" / "kaya787" / "bin")


def jaeger_binary() -> Path:
    return tools_bin_dir() / "jaeger"


def jaeger(layout: Layout) -> Managed:
    binary = jaeger_binary()
    config = layout.root / JAEGER_CONFIG

    # Checked before a start only: `status` and `down` must work without a build.
    def check() -> None:
        if not binary.is_file():
            raise LauncherError(f"Jaeger is not built ({binary} is missing); run `make bootstrap`")
        if not config.is_file():
            raise LauncherError(f"Jaeger config {config} is missing")

    query = f"http://{LOOPBACK}:{JAEGER_QUERY_PORT}"
    health = http_ok(f"http://{LOOPBACK}:{JAEGER_HEALTH_PORT}/status")
    # Healthy is not enough for the tests: they read traces through the query API.
    services = http_ok(f"{query}/api/services")
    return Managed(
        ProcessSpec("jaeger", [str(binary), "--config", str(config)], layout.root),
        lambda: health() and services(),
        {
            "jaeger OTLP gRPC": JAEGER_OTLP_GRPC_PORT,
            "jaeger OTLP HTTP": JAEGER_OTLP_HTTP_PORT,
            "jaeger query": JAEGER_QUERY_PORT,
            "jaeger query gRPC": JAEGER_QUERY_GRPC_PORT,
            "jaeger health": JAEGER_HEALTH_PORT,
            "jaeger metrics": JAEGER_METRICS_PORT,
        },
        url=query,
        prepare=check,
    )


@dataclass(frozen=True)
class ScrapeTarget:
    """One loopback endpoint Prometheus scrapes; labels are added to its every series."""

    job: str
    port: int
    path: str = "/metrics"
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _JOB.match(self.job):
            raise LauncherError(f"scrape target: bad job name {self.job!r}")
        if not 0 < self.port < 65536:
            raise LauncherError(f"scrape target {self.job}: bad port {self.port!r}")
        if not self.path.startswith("/"):
            raise LauncherError(f"scrape target {self.job}: path must start with '/'")
        for name in self.labels:
            if not _NAME.match(name) or name.startswith("__"):
                raise LauncherError(f"scrape target {self.job}: bad label name {name!r}")


def scrape_targets(run_file: RunFile, ports: ControlPlanePorts) -> list[ScrapeTarget]:
    """Everything the launcher starts that exposes metrics, from the same topology it starts.

    The labels repeat what the series already carry (the kit's `service`, Dapr's `app_id`),
    so with honor_labels they also name `up` and the process metrics of that target.
    """
    targets = [
        ScrapeTarget(APP_JOB, app.app_port, "/metrics", {"service": app.app_id})
        for app in run_file.apps
        if app.has_app and app.app_port is not None
    ]
    targets += [
        ScrapeTarget(SIDECAR_JOB, app.metrics_port, "/", {"app_id": app.app_id})
        for app in run_file.apps
    ]
    targets += [
        ScrapeTarget("dapr-sentry", ports.sentry_metrics, "/"),
        ScrapeTarget("dapr-placement", ports.placement_metrics, "/"),
        ScrapeTarget("dapr-scheduler", ports.scheduler_metrics, "/"),
        ScrapeTarget("jaeger", JAEGER_METRICS_PORT),
        ScrapeTarget("prometheus", PROMETHEUS_PORT),
    ]
    return targets


def render_prometheus_config(rules_file: Path, targets: Sequence[ScrapeTarget]) -> str:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for target in targets:
        labels = {**target.labels, "__metrics_path__": target.path}
        jobs.setdefault(target.job, []).append(
            {"targets": [f"{LOOPBACK}:{target.port}"], "labels": labels}
        )
    config = {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_TIMEOUT,
            "evaluation_interval": SCRAPE_INTERVAL,
            "external_labels": {"platform": "kaya787"},
        },
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {"job_name": job, "honor_labels": True, "static_configs": static}
            for job, static in jobs.items()
        ],
    }
    header = "# Rendered by the KAYA787 launcher from dapr/dapr.yaml at start; edits are lost.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


def prometheus(layout: Layout, targets: Sequence[ScrapeTarget]) -> Managed:
    binary = program("prometheus")
    rules = layout.root / RULES_FILE
    run_dir = layout.run / "prometheus"
    data = layout.data / "prometheus"
    config = run_dir / "prometheus.yml"

    # Before a start only (not for `status` or `down`): check, then write the config.
    def render() -> None:
        if not Path(binary).is_file():
            raise LauncherError("prometheus is not installed; run `make bootstrap`")
        if not rules.is_file():
            raise LauncherError(f"alert rules file {rules} is missing")
        run_dir.mkdir(parents=True, exist_ok=True)
        data.mkdir(parents=True, exist_ok=True)
        text = render_prometheus_config(rules, targets)
        if not config.is_file() or config.read_text() != text:
            config.write_text(text)

    base = f"http://{LOOPBACK}:{PROMETHEUS_PORT}"
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={LOOPBACK}:{PROMETHEUS_PORT}",
        "--log.format=json",
    ]
    return Managed(
        ProcessSpec("prometheus", argv, layout.root),
        http_ok(f"{base}/-/ready"),
        {"prometheus": PROMETHEUS_PORT},
        url=base,
        prepare=render,
    )
