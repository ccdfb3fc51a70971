"""Kong on Kubernetes: the public route table, each route to the gateway sidecar's invoke
API of the right app, the edge controls attached, and the callee's ACL letting it through."""

from __future__ import annotations

import pytest
from kaya787_kit.settings import ServiceSettings
from kaya787_launcher.gateway import Route, load_routes

from tests.support.k8s import (
    OVERLAYS,
    Obj,
    Objects,
    acl_allows,
    app_namespace,
    objects,
)
from tests.support.platform import ROOT

GATEWAY = "kaya787-gateway"
ROUTES = load_routes(ROOT / "gateway" / "routes.yaml")
EDGE_PLUGINS = {
    "request-transformer",
    "rate-limiting",
    "request-size-limiting",
    "response-transformer",
    "cors",
    "correlation-id",
    "prometheus",
}


@pytest.fixture(params=OVERLAYS, scope="module")
def objs(request: pytest.FixtureRequest) -> Objects:
    return objects(request.param)


def _paths(objs: Objects) -> list[tuple[Obj, Obj]]:
    return [
        (ingress, path)
        for ingress in objs.of("Ingress", GATEWAY)
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]


def _backend(objs: Objects, path: Obj) -> Obj:
    return objs.one("Service", path["backend"]["service"]["name"], GATEWAY)


def _app_of(service: Obj) -> str:
    prefix = service["metadata"]["annotations"]["konghq.com/path"]
    # /v1.0/invoke/<app-id>.<namespace>/method
    return str(prefix.split("/")[3].split(".")[0])


def test_kong_exposes_exactly_the_public_route_table(objs: Objects) -> None:
    ours = {
        (path["path"], path["pathType"].lower(), _app_of(_backend(objs, path)))
        for _, path in _paths(objs)
    }
    assert ours == {(r.path, r.match, r.app) for r in ROUTES}
    assert len(_paths(objs)) == len(ROUTES)


def test_routes_go_to_the_gateway_sidecar_invoke_api(objs: Objects) -> None:
    for ingress, path in _paths(objs):
        assert ingress["spec"]["ingressClassName"] == "kong"
        assert ingress["metadata"]["annotations"]["konghq.com/strip-path"] == "false"
        service = _backend(objs, path)
        app_id = _app_of(service)
        # Kong's upstream is the sidecar in its own pod: localhost, the sidecar's HTTP port.
        assert service["spec"]["type"] == "ExternalName"
        assert service["spec"]["externalName"] == "localhost"
        ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
        assert ports[path["backend"]["service"]["port"]["name"]] == 3500
        assert service["metadata"]["annotations"]["konghq.com/path"] == (
            f"/v1.0/invoke/{app_id}.{app_namespace(app_id)}/method"
        )


def _plugins(objs: Objects, ingress: Obj) -> list[Obj]:
    names = ingress["metadata"]["annotations"]["konghq.com/plugins"].split(",")
    return [objs.one("KongPlugin", name.strip(), GATEWAY) for name in names]


def test_every_route_carries_the_edge_controls(objs: Objects) -> None:
    for ingress in objs.of("Ingress", GATEWAY):
        assert {p["plugin"] for p in _plugins(objs, ingress)} >= EDGE_PLUGINS, ingress["metadata"]


def test_the_sidecar_token_is_added_by_the_edge_and_never_taken_from_clients(
    objs: Objects,
) -> None:
    plugin = objs.one("KongPlugin", "dapr-token", GATEWAY)
    assert plugin["plugin"] == "request-transformer"
    assert "dapr-api-token" in plugin["config"]["remove"]["headers"]
    (patch,) = plugin["configPatches"]
    assert patch["path"] == "/add/headers"
    assert patch["valueFrom"]["secretKeyRef"]["name"] == "gateway-dapr-token-header"


def test_the_edge_body_limit_is_not_above_the_apps_own() -> None:
    plugin = objects("dev").one("KongPlugin", "body-limit", GATEWAY)["config"]
    unit = {"bytes": 1, "kilobytes": 1024, "megabytes": 1024 * 1024}[plugin["size_unit"]]
    app_limit = ServiceSettings.model_fields["max_body_bytes"].default
    assert plugin["allowed_payload_size"] * unit <= app_limit


def test_logins_are_rate_limited_harder(objs: Objects) -> None:
    def minute_limit(ingress: Obj) -> int:
        (plugin,) = [p for p in _plugins(objs, ingress) if p["plugin"] == "rate-limiting"]
        return int(plugin["config"]["minute"])

    by_path = {path["path"]: ingress for ingress, path in _paths(objs)}
    assert minute_limit(by_path["/oauth2/"]) < minute_limit(by_path["/api/v1/accounts"])
    assert minute_limit(by_path["/api/v1/auth/"]) < minute_limit(by_path["/api/v1/accounts"])


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.path)
def test_the_callee_lets_the_gateway_through_each_route(route: Route) -> None:
    objs = objects("dev")
    config = objs.one("Configuration", "kaya787", app_namespace(route.app))
    path = route.path if route.match == "exact" else route.path.rstrip("/") + "/x"
    verbs = ["GET", "POST"]
    assert any(acl_allows(config, "gateway", GATEWAY, verb, path) for verb in verbs), path
    # The same caller name from another namespace is somebody else.
    assert not any(acl_allows(config, "gateway", "default", verb, path) for verb in verbs)


def test_the_acl_matcher_refuses_what_is_not_listed() -> None:
    objs = objects("dev")
    accounts = objs.one("Configuration", "kaya787", app_namespace("accounts"))
    transactions_ns = app_namespace("transactions")
    assert acl_allows(accounts, "transactions", transactions_ns, "POST", "/internal/debit")
    assert not acl_allows(accounts, "gateway", GATEWAY, "POST", "/internal/debit")
    assert not acl_allows(accounts, "analytics", app_namespace("analytics"), "POST", "/internal/x")
    assert not acl_allows(accounts, "transactions", transactions_ns, "DELETE", "/internal/x")


def test_prod_serves_https_on_one_host() -> None:
    for ingress in objects("prod").of("Ingress", GATEWAY):
        annotations = ingress["metadata"]["annotations"]
        assert annotations["konghq.com/protocols"] == "https"
        hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
        assert hosts == {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
        objects("prod").one("ClusterIssuer", annotations["cert-manager.io/cluster-issuer"])
