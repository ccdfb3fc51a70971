"""An app of the run file and its daprd sidecar, as two managed processes.

Pure builders: tokens, trust anchors and the trace sampling rate come in as arguments. The
only file a sidecar may need, its Configuration with another sampling rate, is written by
its prepare step (run by `up`/`start`, never by `status` or `down`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kaya787_launcher.managed import Managed
from kaya787_launcher.paths import LauncherError, Layout
from kaya787_launcher.probes import http_ok
from kaya787_launcher.processes import ProcessSpec
from kaya787_launcher.topology import LOOPBACK, AppSpec, ControlPlanePorts, RunFile, with_profile

# Trace sampling for sidecars and apps (0..1); unset keeps dapr/configs' samplingRate.
TRACE_SAMPLING_ENV = "KAYA787_TRACE_SAMPLING"
_SAMPLING = re.compile(r'(samplingRate:\s*)"[^"]*"')


def trace_sampling(environ: Mapping[str, str]) -> str | None:
    rate = environ.get(TRACE_SAMPLING_ENV)
    if rate is None:
        return None
    try:
        valid = 0.0 <= float(rate) <= 1.0
    except ValueError:
        valid = False
    if not valid:
        raise LauncherError(f"{TRACE_SAMPLING_ENV} must be a number from 0 to 1, not {rate!r}")
    return rate


@dataclass(frozen=True)
class AppTokens:
    """The pair one app uses: its sidecar requires the first, the app the second."""

    dapr_api_token: str
    app_api_token: str


def sampled_config_path(layout: Layout, app: AppSpec) -> Path:
    return layout.run / "configs" / app.config_file.name


def sampled_config(text: str, rate: str, where: Path) -> str:
    """A Configuration's text with `rate` as its tracing samplingRate."""
    rendered, count = _SAMPLING.subn(rf'\g<1>"{rate}"', text)
    if count != 1:
        raise LauncherError(f"{where} has no tracing samplingRate to override")
    return rendered


def sidecar(
    layout: Layout,
    run_file: RunFile,
    app: AppSpec,
    *,
    profile: str,
    ports: ControlPlanePorts,
    bin_dir: Path,
    tokens: AppTokens,
    trust_anchors: str,
    sampling: str | None,
) -> Managed:
    # Resolved as the run file's paths are, so a root reached through a symlink still swaps.
    components = (layout.root / "components").resolve()
    resources = with_profile(app.resources_paths, components, profile)
    config = app.config_file if sampling is None else sampled_config_path(layout, app)
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
            run_file.app_health_path,
        ]
        for flag, value in (
            ("--app-health-probe-interval", run_file.app_health_probe_interval_s),
            ("--app-health-probe-timeout", run_file.app_health_probe_timeout_ms),
            ("--app-health-threshold", run_file.app_health_threshold),
        ):
            if value is not None:
                app_flags += [flag, str(value)]
    argv = [
        str(bin_dir / "daprd"),
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
        str(config),
        *[arg for path in resources for arg in ("--resources-path", str(path))],
        "--placement-host-address",
        f"{LOOPBACK}:{ports.placement}",
        "--scheduler-host-address",
        f"{LOOPBACK}:{ports.scheduler}",
        "--dapr-graceful-shutdown-seconds",
        "5",
        "--enable-mtls",
        "--sentry-address",
        f"{LOOPBACK}:{ports.sentry}",
        "--log-level",
        run_file.log_level,
        "--log-as-json",
    ]
    env = {
        "DAPR_TRUST_ANCHORS": trust_anchors,
        "DAPR_API_TOKEN": tokens.dapr_api_token,
        "APP_API_TOKEN": tokens.app_api_token,
        "NAMESPACE": "default",
    }

    def write_sampled_config() -> None:
        if sampling is None:
            return
        text = sampled_config(app.config_file.read_text(), sampling, app.config_file)
        config.parent.mkdir(parents=True, exist_ok=True)
        if not config.is_file() or config.read_text() != text:
            config.write_text(text)

    base = f"http://{LOOPBACK}:{app.http_port}"
    return Managed(
        ProcessSpec(f"daprd-{app.app_id}", argv, app.app_dir, env),
        http_ok(f"{base}/v1.0/healthz"),
        {k: v for k, v in app.ports().items() if "sidecar" in k},
        url=base,
        prepare=write_sampled_config,
    )


def app_process(app: AppSpec, *, tokens: AppTokens, sampling: str | None) -> Managed:
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
        "DAPR_API_TOKEN": tokens.dapr_api_token,
        "APP_API_TOKEN": tokens.app_api_token,
    }
    if sampling is not None:
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = sampling
    base = f"http://{LOOPBACK}:{app.app_port}"
    return Managed(
        ProcessSpec(f"app-{app.app_id}", command, app.app_dir, env),
        http_ok(f"{base}/healthz"),
        {f"{app.app_id} app": app.app_port},
        url=base,
    )
