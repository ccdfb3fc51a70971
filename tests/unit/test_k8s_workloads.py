"""Every app Deployment: in step with dapr/dapr.yaml, hardened, probed, sized, with a sidecar."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from kaya787_accounts.settings import AccountsSettings
from kaya787_analytics.settings import AnalyticsSettings
from kaya787_identity.settings import IdentitySettings
from kaya787_kit.settings import ServiceSettings
from kaya787_partner.settings import PartnerSettings
from kaya787_transactions.settings import TransactionsSettings

from tests.support.k8s import (
    APP_IDS,
    OVERLAYS,
    Obj,
    Objects,
    app_namespace,
    container,
    env_of,
    objects,
    pod_template,
    run_file_app,
)


@pytest.fixture(params=OVERLAYS, scope="module")
def objs(request: pytest.FixtureRequest) -> Objects:
    return objects(request.param)


SETTINGS: dict[str, type[ServiceSettings]] = {
    "identity": IdentitySettings,
    "accounts": AccountsSettings,
    "transactions": TransactionsSettings,
    "analytics": AnalyticsSettings,
    "partner": PartnerSettings,
}


def _deployment(objs: Objects, app_id: str) -> Obj:
    return objs.one("Deployment", app_id, app_namespace(app_id))


def _annotations(objs: Objects, app_id: str) -> dict[str, str]:
    annotations: dict[str, str] = pod_template(_deployment(objs, app_id))["metadata"]["annotations"]
    return annotations


@pytest.mark.parametrize("app_id", APP_IDS)
def test_dapr_annotations_match_the_run_file(objs: Objects, app_id: str) -> None:
    annotations = _annotations(objs, app_id)
    spec = run_file_app(app_id)
    assert annotations["dapr.io/enabled"] == "true"
    assert annotations["dapr.io/app-id"] == app_id
    assert annotations["dapr.io/app-port"] == str(spec["appPort"])
    assert annotations["dapr.io/app-protocol"] == "http"
    assert annotations["dapr.io/log-as-json"] == "true"
    assert annotations["dapr.io/enable-app-health-check"] == "true"
    assert annotations["dapr.io/app-health-check-path"] == "/healthz"
    # The sidecar API stays pod-local, like the app.
    assert annotations["dapr.io/sidecar-listen-addresses"] == "127.0.0.1"
    for key in ("cpu-request", "cpu-limit", "memory-request", "memory-limit"):
        assert annotations[f"dapr.io/sidecar-{key}"], key


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_sidecar_config_and_token_secrets_are_the_apps_own(objs: Objects, app_id: str) -> None:
    namespace = app_namespace(app_id)
    annotations = _annotations(objs, app_id)
    objs.one("Configuration", annotations["dapr.io/config"], namespace)
    assert annotations["dapr.io/config"] == "kaya787"
    env = env_of(container(_deployment(objs, app_id)))
    # The app gets the same secrets as its sidecar, key `token` (what Dapr's injector reads).
    assert env["DAPR_API_TOKEN"]["secretKeyRef"] == {
        "name": annotations["dapr.io/api-token-secret"],
        "key": "token",
    }
    assert env["APP_API_TOKEN"]["secretKeyRef"] == {
        "name": annotations["dapr.io/app-token-secret"],
        "key": "token",
    }
    assert annotations["dapr.io/api-token-secret"] == f"{app_id}-dapr-api-token"
    assert annotations["dapr.io/app-token-secret"] == f"{app_id}-app-api-token"


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_app_environment_matches_the_run_file(objs: Objects, app_id: str) -> None:
    env = env_of(container(_deployment(objs, app_id)))
    assert env["APP_ID"] == app_id
    assert env["APP_PORT"] == str(run_file_app(app_id)["appPort"])
    assert env["APP_HOST"] == "127.0.0.1"
    assert env["DAPR_HTTP_PORT"] == "3500"
    assert env["DAPR_GRPC_PORT"] == "50001"
    # The apps export their spans where the sidecars do (the Configuration's collector).
    collector = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert collector == "http://jaeger-collector.observability.svc.cluster.local:4318"
    # Peers live in their own namespaces: every peer id the app's settings have is set,
    # with the namespace, and every such variable is a real setting of the app.
    fields = SETTINGS[app_id].model_fields
    peers = {f.removesuffix("_app_id") for f in fields if f.endswith("_app_id")} - {app_id}
    assert {n for n in env if n.endswith("_APP_ID")} == {f"{p.upper()}_APP_ID" for p in peers}
    for peer in peers:
        assert env[f"{peer.upper()}_APP_ID"] == f"{peer}.{app_namespace(peer)}", peer


# Variables a pod sets that are not the app's settings: the OpenTelemetry SDK's and Python's.
NOT_SETTINGS = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "PYTHONUNBUFFERED"}


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_app_accepts_its_environment_and_each_variable_is_a_setting(
    objs: Objects, app_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renamed or removed setting (MAX_AMOUNT -> MAX_AMOUNT_MAJOR) left in a Deployment would
    be ignored silently by the app: every variable must be a field, and every value valid."""
    env = env_of(container(_deployment(objs, app_id)))
    settings_class = SETTINGS[app_id]
    fields = {name.upper() for name in settings_class.model_fields}
    assert set(env) - NOT_SETTINGS <= fields, set(env) - NOT_SETTINGS - fields
    for name, value in env.items():
        # Secrets are resolved by the kubelet: any token long enough stands in for them.
        monkeypatch.setenv(name, value if isinstance(value, str) else "t" * 48)
    settings = settings_class()
    assert settings.app_id == app_id


@pytest.mark.parametrize("app_id", APP_IDS)
def test_every_deployment_is_hardened(objs: Objects, app_id: str) -> None:
    template = pod_template(_deployment(objs, app_id))
    pod = template["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] >= 10000
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    for spec in template["spec"]["containers"]:
        security = spec["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, spec["name"]
        assert security["readOnlyRootFilesystem"] is True, spec["name"]
        assert security["runAsNonRoot"] is True, spec["name"]
        assert security.get("privileged", False) is False, spec["name"]
        assert security["capabilities"]["drop"] == ["ALL"], spec["name"]
        assert "add" not in security["capabilities"], spec["name"]
        assert security["seccompProfile"]["type"] == "RuntimeDefault", spec["name"]
    assert template["metadata"]["annotations"]["dapr.io/sidecar-seccomp-profile-type"] == (
        "RuntimeDefault"
    )
    # Writable scratch space only where Python may need it.
    mounts = {m["mountPath"] for m in container(_deployment(objs, app_id))["volumeMounts"]}
    assert mounts == {"/tmp"}
    assert not template["spec"].get("hostNetwork")
    assert not template["spec"].get("hostPID")


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_app_namespaces_enforce_the_restricted_pod_security_standard(
    objs: Objects, app_id: str
) -> None:
    labels = objs.one("Namespace", app_namespace(app_id))["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("app_id", APP_IDS)
def test_resources_are_requested_and_limited(objs: Objects, app_id: str) -> None:
    resources = container(_deployment(objs, app_id))["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert {"cpu", "memory"} <= set(resources["limits"])


def _probe_command(objs: Objects, app_id: str, probe: str) -> list[str]:
    command: list[str] = container(_deployment(objs, app_id))[probe]["exec"]["command"]
    return command


@pytest.mark.parametrize("app_id", APP_IDS)
def test_probes_hit_healthz_and_readyz_inside_the_pod(objs: Objects, app_id: str) -> None:
    """The app binds 127.0.0.1, which the kubelet cannot reach: probes exec in the container."""
    port = run_file_app(app_id)["appPort"]
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        command = _probe_command(objs, app_id, probe)
        assert command[:2] == ["python", "-c"], probe
        assert f"http://127.0.0.1:{port}{path}'" in command[2], probe


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    """A stand-in app: /healthz answers 200, /readyz 503 (sidecar not ready)."""
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _run_probe(command: list[str], app_port: int, test_port: int) -> int:
    code = command[2].replace(f"127.0.0.1:{app_port}", f"127.0.0.1:{test_port}")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, check=False).returncode


def test_the_probe_commands_pass_on_200_and_fail_otherwise(health_server: int) -> None:
    objs = objects("dev")
    app_port = run_file_app("accounts")["appPort"]
    assert (
        _run_probe(_probe_command(objs, "accounts", "livenessProbe"), app_port, health_server) == 0
    )
    assert (
        _run_probe(_probe_command(objs, "accounts", "readinessProbe"), app_port, health_server) != 0
    )


def test_a_probe_fails_when_nothing_listens() -> None:
    objs = objects("dev")
    app_port = run_file_app("accounts")["appPort"]
    command = _probe_command(objs, "accounts", "livenessProbe")
    assert _run_probe(command, app_port, 1) != 0


@pytest.mark.parametrize("app_id", APP_IDS)
def test_each_app_has_service_account_service_and_disruption_budget(
    objs: Objects, app_id: str
) -> None:
    namespace = app_namespace(app_id)
    deployment = _deployment(objs, app_id)
    template = pod_template(deployment)
    assert template["spec"]["serviceAccountName"] == app_id
    objs.one("ServiceAccount", app_id, namespace)
    labels = template["metadata"]["labels"]
    service = objs.one("Service", app_id, namespace)
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    # The Service exposes metrics only (the sidecar's, and the app's /metrics listener):
    # the app's API is never exposed, it listens on loopback for its sidecar.
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["dapr-metrics", "app-metrics"]
    (app,) = [c for c in template["spec"]["containers"] if c["name"] == "app"]
    assert [p["name"] for p in app["ports"]] == ["app-metrics"]
    env = env_of(app)
    assert env["APP_HOST"] == "127.0.0.1"
    assert env["METRICS_PORT"] == str(app["ports"][0]["containerPort"])
    budget = objs.one("PodDisruptionBudget", app_id, namespace)
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
