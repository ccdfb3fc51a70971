"""The whole local platform: what to start, in which order, and how to know it is up."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from kaya787_launcher import brokers, devsecrets, observability
from kaya787_launcher.gateway import (
    GATEWAY_APP_ID,
    GATEWAY_PORT,
    JWKS_CACHE_PORT,
    EdgeLimits,
    load_routes,
)
from kaya787_launcher.gateway import render as render_gateway
from kaya787_launcher.managed import Managed, program
from kaya787_launcher.ops_console import OPS_CONSOLE_URL, ops_console
from kaya787_launcher.paths import LauncherError, Layout, dapr_bin_dir
from kaya787_launcher.probes import http_ok, port_in_use, redis_ok, wait_until
from kaya787_launcher.processes import ProcessSpec, ProcessTable
from kaya787_launcher.topology import (
    DEFAULT_PROFILE,
    KAFKA_PROFILE,
    LOOPBACK,
    AppSpec,
    ControlPlanePorts,
    RunFile,
    load_run_file,
    with_profile,
)

DAPR_BINARIES = ("daprd", "placement", "scheduler", "sentry")
# Must match the apps' ServiceSettings defaults (auth_issuer, auth_audience).
AUTH_ISSUER = f"http://127.0.0.1:{GATEWAY_PORT}"
AUTH_AUDIENCE = "kaya787-api"
PROFILE_FILE = "profile"
# Trace sampling for sidecars and apps (0..1); unset keeps dapr/configs' samplingRate.
TRACE_SAMPLING_ENV = "KAYA787_TRACE_SAMPLING"
Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Stack:
    def __init__(self, layout: Layout, profile: str | None = None, say: Say = _stderr) -> None:
        self.layout = layout
        self.ports = ControlPlanePorts()
        self.table = ProcessTable(layout)
        self.run_file: RunFile = load_run_file(layout.run_file)
        self.profile = profile or self._running_profile() or DEFAULT_PROFILE
        self._say = say
        self._bin = dapr_bin_dir()
        self._prepared = False

    # ----------------------------------------------------------------- planning
    def _running_profile(self) -> str | None:
        path = self.layout.run / PROFILE_FILE
        if path.is_file() and self.table.running():
            return path.read_text().strip() or None
        return None

    def _tokens(self) -> dict[str, dict[str, str]]:
        return devsecrets.ensure_tokens(self.layout, [a.app_id for a in self.run_file.apps])

    def _redis_password(self) -> str:
        return devsecrets.ensure_secret_store(self.layout)["redis-password"]

    def _control_plane_tls(self) -> list[str]:
        return [
            "--tls-enabled",
            "--trust-anchors-file",
            str(self.layout.certs / devsecrets.ROOT_CERT),
            "--sentry-address",
            f"{LOOPBACK}:{self.ports.sentry}",
            "--trust-domain",
            devsecrets.TRUST_DOMAIN,
        ]

    def _observability_flags(self, healthz: int, metrics: int) -> list[str]:
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

    def prepare(self) -> None:
        """Create the run folders, dev secrets, certificates and the Redis config if missing."""
        if self._prepared:
            return
        self._prepared = True
        self.layout.ensure()
        if devsecrets.ensure_certificates(self.layout):
            self._say("generated Sentry issuer certificates in var/certs")
        self._tokens()
        p = self.ports
        data = self.layout.data / "redis"
        data.mkdir(parents=True, exist_ok=True)
        conf = (
            f"bind {LOOPBACK}\nport {p.redis}\nprotected-mode yes\ndaemonize no\n"
            f'dir {data}\nappendonly yes\nsave ""\nlogfile ""\n'
            f"requirepass {self._redis_password()}\n"
        )
        path = self._redis_conf()
        if not path.is_file() or path.read_text() != conf:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(conf)

    def _redis_conf(self) -> Path:
        return self.layout.run / "redis.conf"

    def redis(self) -> Managed:
        p = self.ports
        conf = self._redis_conf()
        return Managed(
            ProcessSpec("redis", [program("redis-server"), str(conf)], self.layout.root),
            redis_ok(p.redis, self._redis_password()),
            {"redis": p.redis},
        )

    def sentry(self) -> Managed:
        p = self.ports
        argv = [
            str(self._bin / "sentry"),
            "--config",
            str(self.layout.root / "dapr" / "sentry-config.yaml"),
            "--issuer-credentials",
            str(self.layout.certs),
            "--trust-domain",
            devsecrets.TRUST_DOMAIN,
            "--port",
            str(p.sentry),
            "--listen-address",
            LOOPBACK,
            *self._observability_flags(p.sentry_healthz, p.sentry_metrics),
        ]
        return Managed(
            ProcessSpec("sentry", argv, self.layout.root),
            http_ok(f"http://{LOOPBACK}:{p.sentry_healthz}/healthz"),
            {
                "sentry": p.sentry,
                "sentry healthz": p.sentry_healthz,
                "sentry metrics": p.sentry_metrics,
            },
        )

    def placement(self) -> Managed:
        p = self.ports
        argv = [
            str(self._bin / "placement"),
            "--port",
            str(p.placement),
            "--listen-address",
            LOOPBACK,
            "--initial-cluster",
            f"dapr-placement-0={LOOPBACK}:{p.placement_raft}",
            *self._control_plane_tls(),
            *self._observability_flags(p.placement_healthz, p.placement_metrics),
        ]
        return Managed(
            ProcessSpec("placement", argv, self.layout.root),
            http_ok(f"http://{LOOPBACK}:{p.placement_healthz}/healthz"),
            {
                "placement": p.placement,
                "placement healthz": p.placement_healthz,
                "placement metrics": p.placement_metrics,
                "placement raft": p.placement_raft,
            },
        )

    def scheduler(self) -> Managed:
        p = self.ports
        data = self.layout.data / "scheduler"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self._bin / "scheduler"),
            "--port",
            str(p.scheduler),
            "--listen-address",
            LOOPBACK,
            "--etcd-data-dir",
            str(data),
            "--etcd-client-port",
            str(p.scheduler_etcd_client),
            "--etcd-client-listen-address",
            LOOPBACK,
            "--etcd-initial-cluster",
            f"dapr-scheduler-server-0=http://{LOOPBACK}:{p.scheduler_etcd_peer}",
            "--identity-directory-write",
            str(self.layout.run / "scheduler-identity"),
            *self._control_plane_tls(),
            *self._observability_flags(p.scheduler_healthz, p.scheduler_metrics),
        ]
        return Managed(
            ProcessSpec("scheduler", argv, self.layout.root),
            http_ok(f"http://{LOOPBACK}:{p.scheduler_healthz}/healthz"),
            {
                "scheduler": p.scheduler,
                "scheduler healthz": p.scheduler_healthz,
                "scheduler metrics": p.scheduler_metrics,
                "scheduler etcd client": p.scheduler_etcd_client,
                "scheduler etcd peer": p.scheduler_etcd_peer,
            },
        )

    def sidecar(self, app: AppSpec) -> Managed:
        self.prepare()
        p = self.ports
        tokens = self._tokens()[app.app_id]
        resources = with_profile(app.resources_paths, self.layout.root / "components", self.profile)
        app_flags: list[str] = []
        if app.app_port is not None:
            app_flags = [
                "--app-port",
                str(app.app_port),
                "--app-protocol",
                "http",
                "--app-channel-address",
                LOOPBACK,
                "--enable-app-health-check",
                "--app-health-check-path",
                self.run_file.app_health_path,
            ]
        argv = [
            str(self._bin / "daprd"),
            "--mode",
            "standalone",
            "--app-id",
            app.app_id,
            *app_flags,
            "--dapr-http-port",
            str(app.http_port),
            "--dapr-grpc-port",
            str(app.grpc_port),
            "--dapr-internal-grpc-port",
            str(app.internal_grpc_port),
            "--dapr-listen-addresses",
            LOOPBACK,
            "--dapr-internal-grpc-listen-address",
            LOOPBACK,
            "--metrics-port",
            str(app.metrics_port),
            "--metrics-listen-address",
            LOOPBACK,
            "--config",
            str(self._sidecar_config(app)),
            *[arg for path in resources for arg in ("--resources-path", str(path))],
            "--placement-host-address",
            f"{LOOPBACK}:{p.placement}",
            "--scheduler-host-address",
            f"{LOOPBACK}:{p.scheduler}",
            "--dapr-graceful-shutdown-seconds",
            "5",
            "--enable-mtls",
            "--sentry-address",
            f"{LOOPBACK}:{p.sentry}",
            "--log-level",
            self.run_file.log_level,
            "--log-as-json",
        ]
        env = {
            "DAPR_TRUST_ANCHORS": devsecrets.trust_anchors(self.layout),
            "DAPR_API_TOKEN": tokens["dapr_api_token"],
            "APP_API_TOKEN": tokens["app_api_token"],
            "NAMESPACE": "default",
        }
        base = f"http://{LOOPBACK}:{app.http_port}"
        return Managed(
            ProcessSpec(f"daprd-{app.app_id}", argv, app.app_dir, env),
            http_ok(f"{base}/v1.0/healthz"),
            {k: v for k, v in app.ports().items() if "sidecar" in k},
            url=base,
        )

    def _trace_sampling(self) -> str | None:
        rate = os.environ.get(TRACE_SAMPLING_ENV)
        if rate is None:
            return None
        try:
            valid = 0.0 <= float(rate) <= 1.0
        except ValueError:
            valid = False
        if not valid:
            raise LauncherError(f"{TRACE_SAMPLING_ENV} must be a number from 0 to 1, not {rate!r}")
        return rate

    def _sidecar_config(self, app: AppSpec) -> Path:
        """The app's Configuration, with the sampling rate of KAYA787_TRACE_SAMPLING if set."""
        rate = self._trace_sampling()
        if rate is None:
            return app.config_file
        text, count = re.subn(
            r'(samplingRate:\s*)"[^"]*"', rf'\g<1>"{rate}"', app.config_file.read_text()
        )
        if count != 1:
            raise LauncherError(f"{app.config_file} has no tracing samplingRate to override")
        folder = self.layout.run / "configs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / app.config_file.name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        return path

    def app(self, app: AppSpec) -> Managed:
        self.prepare()
        tokens = self._tokens()[app.app_id]
        if app.command is None or app.app_port is None:
            raise LauncherError(f"{app.app_id} is a sidecar without an app")
        command = list(app.command)
        if "/" in command[0]:
            # Relative to the app folder, like the CLI; abspath keeps the venv's symlink.
            command[0] = os.path.abspath(app.app_dir / command[0])
        env = {
            **app.env,
            "APP_ID": app.app_id,
            "APP_PORT": str(app.app_port),
            "APP_PROTOCOL": "http",
            "DAPR_HTTP_PORT": str(app.http_port),
            "DAPR_GRPC_PORT": str(app.grpc_port),
            "DAPR_API_TOKEN": tokens["dapr_api_token"],
            "APP_API_TOKEN": tokens["app_api_token"],
        }
        rate = self._trace_sampling()
        if rate is not None:
            env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
            env["OTEL_TRACES_SAMPLER_ARG"] = rate
        base = f"http://{LOOPBACK}:{app.app_port}"
        return Managed(
            ProcessSpec(f"app-{app.app_id}", command, app.app_dir, env),
            http_ok(f"{base}/healthz"),
            {f"{app.app_id} app": app.app_port},
            url=base,
        )

    def data(self) -> list[Managed]:
        """The profile's broker and state store processes."""
        if self.profile == KAFKA_PROFILE:
            return [
                brokers.postgres(self.layout, self._postgres_password()),
                brokers.kafka(self.layout),
            ]
        return [self.redis()]

    def _postgres_password(self) -> str:
        return devsecrets.ensure_secret_store(self.layout)["postgres-password"]

    def jaeger(self) -> Managed:
        return observability.jaeger(self.layout)

    def prometheus(self) -> Managed:
        return observability.prometheus(
            self.layout, observability.scrape_targets(self.run_file, self.ports)
        )

    def ops_console(self) -> Managed:
        return ops_console(self.layout, self.profile, AUTH_ISSUER)

    def tiers(self, only: Sequence[str] | None = None) -> list[list[Managed]]:
        """Start order: each tier needs the ones before it (Sentry before any mTLS peer).

        Jaeger starts first so that no span of the start-up is lost; Prometheus last, when
        every target it scrapes is there.
        """
        self.prepare()
        apps = self.run_file.apps if only is None else [self.run_file.app(a) for a in only]
        services = [m for app in apps if app.has_app for m in (self.sidecar(app), self.app(app))]
        edge = [self.sidecar(a) for a in apps if not a.has_app]
        if edge:
            edge.append(self.nginx())
        return [
            [*self.data(), self.sentry(), self.jaeger()],
            [self.placement(), self.scheduler()],
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

    def nginx(self) -> Managed:
        """NGINX in front of the gateway's sidecar, rendered with that sidecar's token."""
        sidecar = self.run_file.app(GATEWAY_APP_ID)
        run_dir = self.layout.run / "gateway"
        run_dir.mkdir(parents=True, exist_ok=True)
        root = self.layout.root
        text = render_gateway(
            root / "gateway" / "nginx.conf.template",
            load_routes(root / "gateway" / "routes.yaml"),
            run_dir=run_dir,
            gateway_dir=root / "gateway",
            log_file=self.layout.logs / "gateway-access.log",
            sidecar=f"{LOOPBACK}:{sidecar.http_port}",
            dapr_api_token=self._tokens()[GATEWAY_APP_ID]["dapr_api_token"],
            issuer=AUTH_ISSUER,
            audience=AUTH_AUDIENCE,
            limits=EdgeLimits.from_env(),
        )
        conf = run_dir / "nginx.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return Managed(
            ProcessSpec("nginx", [program("nginx"), "-c", str(conf), "-p", str(run_dir)], root),
            http_ok(f"http://{LOOPBACK}:{GATEWAY_PORT}/.well-known/openid-configuration"),
            {"gateway": GATEWAY_PORT, "gateway JWKS cache": JWKS_CACHE_PORT},
            url=f"http://{LOOPBACK}:{GATEWAY_PORT}",
        )

    # ---------------------------------------------------------------- preflight
    def preflight(self, tiers: list[list[Managed]]) -> None:
        broker = "java" if self.profile == KAFKA_PROFILE else "redis-server"
        needed = ["nginx", "prometheus", broker]
        for name in needed:
            if not Path(program(name)).is_file():
                raise LauncherError(f"{name} is not installed; run `make bootstrap`")
        missing = [name for name in DAPR_BINARIES if not (self._bin / name).is_file()]
        if missing:
            raise LauncherError(
                f"Dapr runtime binaries missing in {self._bin}: {', '.join(missing)};"
                " run `make bootstrap`"
            )
        if not self.layout.components(self.profile).is_dir():
            raise LauncherError(
                f"profile {self.profile!r} has no components folder"
                f" ({self.layout.components(self.profile)})"
            )
        busy = []
        for managed in (m for tier in tiers for m in tier):
            if self.table.get(managed.spec.name) is not None:
                continue  # ours, already running
            busy += [
                f"{what} ({port})" for what, port in managed.ports.items() if port_in_use(port)
            ]
        if busy:
            raise LauncherError(
                "ports already in use by another process: "
                + ", ".join(busy)
                + "; stop whatever holds them (or `make down` if it is an old KAYA787 run)"
            )

    # ---------------------------------------------------------------- lifecycle
    def up(self, timeout: float = 90.0, only: Sequence[str] | None = None) -> None:
        running = self._running_profile()
        if running and running != self.profile:
            raise LauncherError(
                f"the platform is running with profile {running!r}; `make down` first"
            )
        tiers = self.tiers(only)
        self.preflight(tiers)
        (self.layout.run / PROFILE_FILE).write_text(self.profile)
        started = time.monotonic()
        try:
            for tier in tiers:
                for managed in tier:
                    self._start(managed)
                for managed in tier:
                    self._await(managed, timeout)
        except BaseException:
            self.down(quiet=True)
            raise
        self._say(f"platform up (profile {self.profile}) in {time.monotonic() - started:.1f}s")

    def _start(self, managed: Managed) -> None:
        if managed.prepare is not None and self.table.get(managed.spec.name) is None:
            managed.prepare()
        self.table.start(managed.spec)

    def _await(self, managed: Managed, timeout: float) -> None:
        name = managed.spec.name

        def alive() -> bool:
            return self.table.get(name) is not None

        self._say(f"  waiting for {name} ...")
        if not wait_until(managed.probe, timeout, alive):
            state = "exited" if not alive() else f"not ready after {timeout:.0f}s"
            log = self.table.log_path(name)
            raise LauncherError(f"{name} {state}; last lines of {log}:\n{self.table.tail(name)}")

    def down(self, *, quiet: bool = False) -> list[str]:
        stopped = []
        order = [m.spec.name for tier in reversed(self._tiers_for_down()) for m in tier]
        known = set(order)
        # Anything else we have a pid file for (an older layout) goes too.
        order += [t.name for t in self.table.running() if t.name not in known]
        for name in order:
            if self.table.stop(name):
                stopped.append(name)
                if not quiet:
                    self._say(f"  stopped {name}")
        (self.layout.run / PROFILE_FILE).unlink(missing_ok=True)
        return stopped

    def _tiers_for_down(self) -> list[list[Managed]]:
        try:
            return self.tiers()
        except (LauncherError, OSError):
            return []

    # ------------------------------------------------- single-app fault control
    def stop_app(self, app_id: str, *, kill: bool = False) -> None:
        self.table.stop(f"app-{self.run_file.app(app_id).app_id}", kill=kill, grace=5.0)

    def stop_sidecar(self, app_id: str, *, kill: bool = False) -> None:
        self.table.stop(f"daprd-{self.run_file.app(app_id).app_id}", kill=kill, grace=5.0)

    def start_app(self, app_id: str, timeout: float = 60.0) -> None:
        managed = self.app(self.run_file.app(app_id))
        self._start(managed)
        self._await(managed, timeout)

    def start_sidecar(self, app_id: str, timeout: float = 60.0) -> None:
        managed = self.sidecar(self.run_file.app(app_id))
        self._start(managed)
        self._await(managed, timeout)

    def stop_service(self, name: str, *, kill: bool = False) -> None:
        """Stop one infrastructure process (e.g. `kafka`) for a fault test."""
        self.table.stop(self.managed(name).spec.name, kill=kill, grace=10.0)

    def start_service(self, name: str, timeout: float = 90.0) -> None:
        managed = self.managed(name)
        self._start(managed)
        self._await(managed, timeout)

    def restart_app(self, app_id: str, *, kill: bool = False) -> None:
        self.stop_app(app_id, kill=kill)
        self.start_app(app_id)

    def restart_sidecar(self, app_id: str, *, kill: bool = False) -> None:
        self.stop_sidecar(app_id, kill=kill)
        self.start_sidecar(app_id)

    # ------------------------------------------------------------------- status
    def is_up(self) -> bool:
        return all(
            self.table.get(m.spec.name) is not None and m.probe()
            for tier in self.tiers()
            for m in tier
        )

    def status(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for tier in self.tiers():
            for managed in tier:
                tracked = self.table.get(managed.spec.name)
                rows.append(
                    {
                        "name": managed.spec.name,
                        "pid": tracked.pid if tracked else None,
                        "state": ("ready" if managed.probe() else "starting")
                        if tracked
                        else "stopped",
                        "ports": managed.ports,
                        "log": str(self.table.log_path(managed.spec.name)),
                    }
                )
        return rows

    def app_environment(self, app_id: str) -> dict[str, str]:
        """The environment the launcher gives an app, to run it by hand against its sidecar."""
        return dict(self.app(self.run_file.app(app_id)).spec.env)

    def tokens_for(self, app_id: str) -> dict[str, str]:
        return self._tokens()[self.run_file.app(app_id).app_id]

    def _describe_data(self) -> list[str]:
        secrets = "password in var/secrets/secrets.json"
        if self.profile == KAFKA_PROFILE:
            return [
                f"  kafka         {LOOPBACK}:{brokers.KAFKA_PORT} (KRaft, one node, no auth)",
                f"  postgres      {LOOPBACK}:{brokers.POSTGRES_PORT} database"
                f" {brokers.POSTGRES_DB} ({secrets})",
            ]
        return [f"  redis         {LOOPBACK}:{self.ports.redis} ({secrets})"]

    def describe(self) -> str:
        lines = [
            f"KAYA787 local platform, profile {self.profile}",
            f"  public API    http://{LOOPBACK}:{GATEWAY_PORT}  (NGINX gateway; see"
            " gateway/routes.yaml)",
        ]
        for app in self.run_file.apps:
            where = f"app http://{LOOPBACK}:{app.app_port}" if app.has_app else "no app   "
            lines.append(
                f"  {app.app_id:<13} {where}  sidecar http://{LOOPBACK}:{app.http_port}"
                f" (gRPC {app.grpc_port}, metrics {app.metrics_port})"
            )
        p = self.ports
        lines += [
            f"  control plane sentry {LOOPBACK}:{p.sentry}  placement {LOOPBACK}:{p.placement}"
            f"  scheduler {LOOPBACK}:{p.scheduler}",
            *self._describe_data(),
            f"  traces        Jaeger query API http://{LOOPBACK}:{observability.JAEGER_QUERY_PORT}"
            f"/api/traces (OTLP {LOOPBACK}:{observability.JAEGER_OTLP_GRPC_PORT} gRPC,"
            f" :{observability.JAEGER_OTLP_HTTP_PORT} HTTP)",
            f"  metrics       Prometheus http://{LOOPBACK}:{observability.PROMETHEUS_PORT}"
            " (apps' /metrics, sidecars, control plane; rules in observability/prometheus)",
            f"  dashboard     http://{LOOPBACK}:{GATEWAY_PORT}/dashboard (live analytics;"
            " needs a token with analytics:read)",
            f"  ops console   {OPS_CONSOLE_URL} (apps, sidecars, control plane, traffic,"
            " traces; sign in with var/secrets/staff.json)",
            f"  logs          {self.layout.logs}/<name>.log",
            f"  tokens        {self.layout.secrets / devsecrets.TOKENS_FILE}",
            "  stop with     make down",
        ]
        return "\n".join(lines)


def sidecar_metadata(stack: Stack, app_id: str) -> dict[str, object]:
    app = stack.run_file.app(app_id)
    url = f"http://{LOOPBACK}:{app.http_port}/v1.0/metadata"
    try:
        response = httpx.get(
            url,
            headers={"dapr-api-token": stack.tokens_for(app_id)["dapr_api_token"]},
            timeout=5.0,
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise LauncherError(f"{app_id}'s sidecar did not answer at {url}: {exc}") from exc
    body: dict[str, object] = json.loads(response.text)
    return body
