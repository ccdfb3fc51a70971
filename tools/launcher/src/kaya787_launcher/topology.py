"""What runs where: the apps come from the multi-app run file, the rest is fixed here.

The run file (`dapr/dapr.yaml`, the Dapr CLI's format) is the single source of app-ids
and ports, so `dapr run -f dapr/` and this launcher cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kaya787_launcher.paths import LauncherError

LOOPBACK = "127.0.0.1"
KAFKA_PROFILE = "kafka"
PROFILES = ("local", KAFKA_PROFILE)
DEFAULT_PROFILE = "local"


@dataclass(frozen=True)
class ControlPlanePorts:
    sentry: int = 50001  # where `dapr run` looks for Sentry with mTLS on
    sentry_healthz: int = 8181
    sentry_metrics: int = 9181
    placement: int = 50005
    placement_healthz: int = 8182
    placement_metrics: int = 9182
    placement_raft: int = 8201
    scheduler: int = 50006
    scheduler_healthz: int = 8183
    scheduler_metrics: int = 9183
    scheduler_etcd_client: int = 52379
    scheduler_etcd_peer: int = 52380
    redis: int = 6380


@dataclass(frozen=True)
class AppSpec:
    """One sidecar, and the app behind it (none for the gateway's sidecar)."""

    app_id: str
    app_dir: Path
    app_port: int | None
    http_port: int
    grpc_port: int
    internal_grpc_port: int
    metrics_port: int
    command: tuple[str, ...] | None
    env: dict[str, str]
    resources_paths: tuple[Path, ...]
    config_file: Path

    @property
    def has_app(self) -> bool:
        return self.command is not None

    def ports(self) -> dict[str, int]:
        app = {f"{self.app_id} app": self.app_port} if self.app_port else {}
        return {
            **app,
            f"{self.app_id} sidecar HTTP": self.http_port,
            f"{self.app_id} sidecar gRPC": self.grpc_port,
            f"{self.app_id} sidecar internal gRPC": self.internal_grpc_port,
            f"{self.app_id} sidecar metrics": self.metrics_port,
        }


@dataclass(frozen=True)
class RunFile:
    apps: tuple[AppSpec, ...]
    app_health_path: str
    log_level: str
    # The sidecar's app health probe (unset: daprd's defaults, 5 s, 500 ms, 3 failures). A
    # probe timing out on a busy machine counts as a failure, and past the threshold the
    # sidecar refuses every call to the app (500 "app is not in a healthy state").
    app_health_probe_interval_s: int | None = None
    app_health_probe_timeout_ms: int | None = None
    app_health_threshold: int | None = None

    def app(self, app_id: str) -> AppSpec:
        for spec in self.apps:
            if spec.app_id == app_id:
                return spec
        known = ", ".join(a.app_id for a in self.apps)
        raise LauncherError(f"unknown app {app_id!r}; known apps: {known}")


def _int(app: dict[str, Any], key: str, where: str) -> int:
    value = app.get(key)
    if not isinstance(value, int) or not 0 < value < 65536:
        raise LauncherError(f"{where}: '{key}' must be a port number, got {value!r}")
    return value


def load_run_file(path: Path) -> RunFile:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LauncherError(f"cannot read run file {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise LauncherError(f"{path}: expected a Dapr multi-app run file with 'version: 1'")
    base = path.parent
    common: dict[str, Any] = doc.get("common") or {}
    common_env = {str(k): str(v) for k, v in (common.get("env") or {}).items()}
    apps: list[AppSpec] = []
    for index, raw in enumerate(doc.get("apps") or []):
        where = f"{path}: apps[{index}]"
        app_id = raw.get("appID")
        if not isinstance(app_id, str) or not app_id:
            raise LauncherError(f"{where}: 'appID' is required")
        command = raw.get("command")
        if command is not None and (not isinstance(command, list) or not command):
            raise LauncherError(f"{where}: 'command' must be a non-empty list")
        apps.append(
            AppSpec(
                app_id=app_id,
                app_dir=(base / str(raw.get("appDirPath", "."))).resolve(),
                app_port=_int(raw, "appPort", where) if command is not None else None,
                http_port=_int(raw, "daprHTTPPort", where),
                grpc_port=_int(raw, "daprGRPCPort", where),
                internal_grpc_port=_int(raw, "daprInternalGRPCPort", where),
                metrics_port=_int(raw, "metricsPort", where),
                command=tuple(str(part) for part in command) if command is not None else None,
                env={**common_env, **{str(k): str(v) for k, v in (raw.get("env") or {}).items()}},
                resources_paths=tuple(
                    (base / str(p)).resolve()
                    for p in (raw.get("resourcesPaths") or common.get("resourcesPaths") or [])
                ),
                config_file=(
                    base / str(raw.get("configFilePath") or common.get("configFilePath", ""))
                ).resolve(),
            )
        )
    if not apps:
        raise LauncherError(f"{path}: no apps listed")
    return RunFile(
        apps=tuple(apps),
        app_health_path=str(common.get("appHealthCheckPath", "/healthz")),
        log_level=str(common.get("logLevel", "info")),
        app_health_probe_interval_s=_optional_int(common, "appHealthProbeInterval", path),
        app_health_probe_timeout_ms=_optional_int(common, "appHealthProbeTimeout", path),
        app_health_threshold=_optional_int(common, "appHealthThreshold", path),
    )


def _optional_int(section: dict[str, Any], key: str, where: Path) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise LauncherError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


def with_profile(paths: tuple[Path, ...], components_root: Path, profile: str) -> tuple[Path, ...]:
    """Point every `components/<any profile>/...` path at `components/<profile>/...`."""
    swapped = []
    for path in paths:
        try:
            relative = path.relative_to(components_root)
        except ValueError:
            swapped.append(path)  # not a component folder (resiliency): unchanged
            continue
        swapped.append(components_root.joinpath(profile, *relative.parts[1:]))
    return tuple(swapped)
