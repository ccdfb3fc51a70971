"""Offline checks of the edge: one route table for NGINX, Kong and the Dapr ACLs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kaya787_launcher.gateway import EdgeLimits, Route, load_routes, render

from tests.support.platform import ROOT

ROUTES = load_routes(ROOT / "gateway" / "routes.yaml")
KONG = yaml.safe_load((ROOT / "gateway" / "kong.yml").read_text())
CONFIGS = {
    p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "dapr" / "configs").glob("*.yaml")
}


def _kong_routes() -> set[tuple[str, str, str, bool]]:
    found = set()
    for service in KONG["services"]:
        service_jwt = any(p["name"] == "jwt" for p in service.get("plugins", []))
        for route in service["routes"]:
            route_jwt = any(p["name"] == "jwt" for p in route.get("plugins", []))
            for path in route["paths"]:
                if path.startswith("~"):
                    assert path.endswith("$"), path
                    found.add((path[1:-1], "exact", service["name"], service_jwt or route_jwt))
                else:
                    found.add((path, "prefix", service["name"], service_jwt or route_jwt))
    return found


def test_kong_exposes_exactly_the_nginx_route_table() -> None:
    ours = {(r.path, r.match, r.app, r.auth) for r in ROUTES}
    assert _kong_routes() == ours


def test_kong_has_every_edge_control() -> None:
    plugins = {p["name"] for p in KONG["plugins"]}
    assert {
        "rate-limiting",
        "request-size-limiting",
        "cors",
        "correlation-id",
        "prometheus",
    } <= plugins


@pytest.mark.skipif(shutil.which("deck") is None, reason="decK not installed (make bootstrap)")
def test_deck_validates_the_declarative_config() -> None:
    result = subprocess.run(
        ["deck", "validate", "-s", str(ROOT / "gateway" / "kong.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _render(tmp_path: Path) -> str:
    return render(
        ROOT / "gateway" / "nginx.conf.template",
        ROUTES,
        run_dir=tmp_path,
        gateway_dir=ROOT / "gateway",
        log_file=tmp_path / "access.log",
        sidecar="127.0.0.1:3500",
        dapr_api_token="t" * 40,
        issuer="http://127.0.0.1:8080",
        audience="kaya787-api",
        limits=EdgeLimits(),
    )


def test_rendered_nginx_routes_each_entry_to_its_app(tmp_path: Path) -> None:
    text = _render(tmp_path)
    for route in ROUTES:
        modifier = "=" if route.match == "exact" else "^~"
        block = text.split(f"location {modifier} {route.path} {{", 1)[1].split("\n        }", 1)[0]
        assert f"set $invoke_app {route.app};" in block
        assert "try_files /-never- @invoke;" in block
        assert ("auth_request /_jwt_check;" in block) == route.auth
    # One place proxies, with the app each route named.
    assert text.count("proxy_pass $sidecar") == 1
    assert "proxy_pass $sidecar/v1.0/invoke/$invoke_app/method$request_uri;" in text
    assert "@" not in text.replace("location @", "").replace("= @", "").replace(" @invoke;", "")


@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx not installed (make bootstrap)",
)
def test_rendered_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(_render(tmp_path))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def _allowed(policy_ops: list[dict[str, Any]], path: str) -> bool:
    for op in policy_ops:
        name = op["name"]
        if name == path or (name.endswith("/**") and path.startswith(name[:-3])):
            return bool(op["action"] == "allow")
    return False


def _gateway_ops(app_id: str) -> list[dict[str, Any]]:
    policies = CONFIGS[app_id]["spec"]["accessControl"].get("policies", [])
    return next(p["operations"] for p in policies if p["appId"] == "gateway")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.path)
def test_the_callee_acl_lets_the_gateway_reach_each_public_route(route: Route) -> None:
    probe = route.path if route.match == "exact" else route.path.rstrip("/") + "/x"
    assert _allowed(_gateway_ops(route.app), probe), (route.app, probe)


def test_acls_deny_by_default_and_only_transactions_reaches_accounts_internal() -> None:
    for app_id, config in CONFIGS.items():
        acl = config["spec"]["accessControl"]
        assert acl["defaultAction"] == "deny", app_id
        for policy in acl.get("policies", []):
            assert policy["defaultAction"] == "deny", (app_id, policy["appId"])
            internal = [op for op in policy["operations"] if op["name"].startswith("/internal")]
            if app_id == "accounts" and internal:
                assert policy["appId"] == "transactions"


def test_shared_configuration_is_identical_in_every_app() -> None:
    def shared(config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config["spec"].items() if k != "accessControl"}

    first = shared(CONFIGS["identity"])
    assert first["mtls"]["enabled"] is True
    assert first["nameResolution"]["component"] == "sqlite"
    # Dapr 1.18's hourly resolver clean-up deletes live registrations: every sidecar exits.
    assert first["nameResolution"]["configuration"]["cleanupInterval"] == "0s"
    for app_id, config in CONFIGS.items():
        assert config["metadata"]["name"] == app_id
        assert shared(config) == first, app_id
