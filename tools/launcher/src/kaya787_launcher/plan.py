"""What the platform is made of, and in which order it starts: a plan, built from the run
file, the profile and the dev secrets as they are. Planning reads and never writes, so
`status`, `down` and `list` leave var/ as they found it; every file a process needs is
written by that process's prepare step, run just before it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kaya787_launcher import brokers, controlplane, observability, sidecars
from kaya787_launcher.devsecrets import DevSecrets
from kaya787_launcher.gateway import AUTH_ISSUER, GATEWAY_APP_ID, ROUTES, EdgeLimits, load_routes
from kaya787_launcher.gateway import nginx as nginx_process
from kaya787_launcher.managed import Managed
from kaya787_launcher.ops_console import ops_console
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.topology import AppSpec, ControlPlanePorts, RunFile


@dataclass(frozen=True)
class Plan:
    layout: Layout
    run_file: RunFile
    profile: str
    ports: ControlPlanePorts
    bin_dir: Path
    secrets: DevSecrets
    sampling: str | None
    limits: EdgeLimits

    def tokens(self, app_id: str) -> sidecars.AppTokens:
        return sidecars.AppTokens(
            self.secrets.token(app_id, "dapr_api_token"),
            self.secrets.token(app_id, "app_api_token"),
        )

    def sidecar(self, app: AppSpec) -> Managed:
        return sidecars.sidecar(
            self.layout,
            self.run_file,
            app,
            profile=self.profile,
            ports=self.ports,
            bin_dir=self.bin_dir,
            tokens=self.tokens(app.app_id),
            trust_anchors=self.secrets.trust_anchors,
            sampling=self.sampling,
        )

    def app(self, app: AppSpec) -> Managed:
        return sidecars.app_process(app, tokens=self.tokens(app.app_id), sampling=self.sampling)

    def data(self) -> list[Managed]:
        """The profile's broker and state store processes."""
        return brokers.data(self.layout, self.profile, self.ports, self.secrets.store)

    def nginx(self) -> Managed:
        return nginx_process(
            self.layout,
            load_routes(self.layout.root / ROUTES),
            sidecar_http_port=self.run_file.app(GATEWAY_APP_ID).http_port,
            dapr_api_token=self.tokens(GATEWAY_APP_ID).dapr_api_token,
            limits=self.limits,
        )

    def prometheus(self) -> Managed:
        targets = observability.scrape_targets(self.run_file, self.ports)
        return observability.prometheus(self.layout, targets)

    def ops_console(self) -> Managed:
        return ops_console(self.layout, self.profile, AUTH_ISSUER)

    def tiers(self, only: Sequence[str] | None = None) -> list[list[Managed]]:
        """Start order: each tier needs the ones before it (Sentry before any mTLS peer).

        Jaeger starts first so that no span of the start-up is lost; Prometheus last, when
        every target it scrapes is there.
        """
        apps = self.run_file.apps if only is None else [self.run_file.app(a) for a in only]
        services = [m for app in apps if app.has_app for m in (self.sidecar(app), self.app(app))]
        edge = [self.sidecar(a) for a in apps if not a.has_app]
        if edge:
            edge.append(self.nginx())
        layout, ports, bin_dir = self.layout, self.ports, self.bin_dir
        return [
            [
                *self.data(),
                controlplane.sentry(layout, ports, bin_dir),
                observability.jaeger(layout),
            ],
            [
                controlplane.placement(layout, ports, bin_dir),
                controlplane.scheduler(layout, ports, bin_dir),
            ],
            services,
            edge,
            [self.prometheus(), self.ops_console()],
        ]

    def managed(self, name: str) -> Managed:
        """One process of the platform by its name (as `status` lists it)."""
        for tier in self.tiers():
            for managed in tier:
                if managed.spec.name == name:
                    return managed
        raise LauncherError(f"no process named {name!r} in profile {self.profile}")
