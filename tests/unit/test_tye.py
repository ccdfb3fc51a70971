"""tye.yaml describes the same apps, app-ids and ports as the multi-app run file."""

from __future__ import annotations

from typing import Any

from tests.support.k8s import load_yaml, run_file
from tests.support.platform import ROOT

TYE: dict[str, Any] = dict(load_yaml(ROOT / "tye.yaml"))


def _python_apps() -> list[dict[str, Any]]:
    """The run file's apps that have a process of their own (the gateway is a sidecar only)."""
    return [app for app in run_file()["apps"] if "appPort" in app]


def _dapr_extension() -> dict[str, Any]:
    (extension,) = [e for e in TYE["extensions"] if e["name"] == "dapr"]
    return dict(extension)


def test_tye_has_every_app_of_the_run_file() -> None:
    assert [s["name"] for s in TYE["services"]] == [a["appID"] for a in _python_apps()]


def test_every_service_runs_its_module_on_its_port() -> None:
    by_name = {s["name"]: s for s in TYE["services"]}
    for app in _python_apps():
        service = by_name[app["appID"]]
        assert [service["executable"], *service["args"].split()] == [
            ".venv/bin/python",
            *app["command"][1:],
        ]
        assert [b["port"] for b in service["bindings"] if b["protocol"] == "http"] == [
            app["appPort"]
        ]
        env = {e["name"]: e["value"] for e in service["env"]}
        assert env == {"APP_ID": app["appID"], "APP_PORT": str(app["appPort"])}
        assert (ROOT / service["workingDirectory"]).resolve() == (
            ROOT / "dapr" / app["appDirPath"]
        ).resolve()


def test_every_sidecar_has_the_run_files_app_id_and_ports() -> None:
    sidecars = _dapr_extension()["services"]
    assert set(sidecars) == {a["appID"] for a in _python_apps()}
    for app in _python_apps():
        sidecar = sidecars[app["appID"]]
        assert sidecar == {
            "app-id": app["appID"],
            "http-port": app["daprHTTPPort"],
            "grpc-port": app["daprGRPCPort"],
            "metrics-port": app["metricsPort"],
        }


def test_the_dapr_extension_uses_the_local_components_and_placement() -> None:
    extension = _dapr_extension()
    assert (ROOT / extension["components-path"]).resolve() == (ROOT / "components" / "local")
    placement = run_file()["common"]["placementHostAddress"]
    assert placement.endswith(f":{extension['placement-port']}")
