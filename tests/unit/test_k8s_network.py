"""NetworkPolicies, evaluated: default deny, then only what the design needs.

A small evaluator of Kubernetes NetworkPolicy semantics (tests/support/k8s.py) decides
whether a connection between two pods is allowed by the rendered policies; each check
below is a connection the platform needs, or one it must refuse.
"""

from __future__ import annotations

import itertools

import pytest

from tests.support.k8s import (
    APP_IDS,
    OVERLAYS,
    PUBSUB_APP_IDS,
    Obj,
    Objects,
    Pod,
    app_namespace,
    objects,
    selector_matches,
    traffic_allowed,
)

SIDECAR_INTERNAL = 50002
INTERNET = None  # outside the pod network: a load balancer, the API server


def app_pod(app_id: str) -> Pod:
    return Pod(
        app_namespace(app_id),
        {
            "app.kubernetes.io/name": app_id,
            "kaya787.io/app": app_id,
            "dapr.io/app-id": app_id,
            "dapr.io/sidecar-injected": "true",
        },
    )


GATEWAY = Pod(
    "kaya787-gateway",
    {
        "app.kubernetes.io/name": "kong",
        "dapr.io/app-id": "gateway",
        "dapr.io/sidecar-injected": "true",
    },
)
BROKER = Pod("kaya787-data", {"strimzi.io/cluster": "kaya787", "strimzi.io/kind": "Kafka"})
KEDA = Pod("keda", {"app": "keda-operator"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
SENTRY = Pod("dapr-system", {"app": "dapr-sentry"})
DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
JAEGER = Pod("observability", {"app.kubernetes.io/name": "jaeger"})
CNPG_OPERATOR = Pod("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})


def pg_pod(app_id: str) -> Pod:
    return Pod(
        app_namespace(app_id), {"cnpg.io/cluster": f"{app_id}-pg", "cnpg.io/podRole": "instance"}
    )


def intruder(namespace: str) -> Pod:
    return Pod(namespace, {"run": "debug"})


@pytest.fixture(params=OVERLAYS, scope="module")
def objs(request: pytest.FixtureRequest) -> Objects:
    return objects(request.param)


@pytest.fixture(scope="module")
def policies(objs: Objects) -> list[Obj]:
    return objs.of("NetworkPolicy")


def _acl_callers(objs: Objects, callee: str) -> set[str]:
    config = objs.one("Configuration", "kaya787", app_namespace(callee))
    return {p["appId"] for p in config["spec"]["accessControl"].get("policies", [])}


def test_every_namespace_denies_by_default_and_allows_dns(objs: Objects) -> None:
    ours = {n for n in objs.namespaces() if n.startswith("kaya787-")}
    assert ours == {*(app_namespace(a) for a in APP_IDS), "kaya787-gateway", "kaya787-data"}
    for namespace in ours:
        deny = objs.one("NetworkPolicy", "default-deny-all", namespace)["spec"]
        assert deny["podSelector"] == {}
        assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
        assert "ingress" not in deny
        assert "egress" not in deny
        objs.one("NetworkPolicy", "allow-dns", namespace)


def test_the_evaluator_itself_denies_when_only_default_deny_exists() -> None:
    deny: Obj = {
        "metadata": {"name": "d", "namespace": "x"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    assert traffic_allowed([], Pod("x", {}), Pod("x", {}), 80)
    assert not traffic_allowed([deny], Pod("x", {}), Pod("x", {}), 80)
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""})
    assert not selector_matches(
        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}, {"a": "c"}
    )


def test_sidecar_mesh_follows_the_access_control_lists(objs: Objects, policies: list[Obj]) -> None:
    """caller -> callee on the sidecars' internal gRPC port exactly where Dapr ACLs allow it."""
    callers = {app: app_pod(app) for app in APP_IDS} | {"gateway": GATEWAY}
    for caller, callee in itertools.product(callers, APP_IDS):
        allowed = traffic_allowed(policies, callers[caller], app_pod(callee), SIDECAR_INTERNAL)
        expected = caller == callee or caller in _acl_callers(objs, callee)
        assert allowed == expected, (caller, callee)


def test_nothing_reaches_the_apps_from_outside_the_mesh(policies: list[Obj]) -> None:
    for app_id in APP_IDS:
        pod = app_pod(app_id)
        for source in (INTERNET, intruder(pod.namespace), intruder("default"), BROKER):
            for port in (SIDECAR_INTERNAL, 3500, 3501, 50001, 8101):
                assert not traffic_allowed(policies, source, pod, port), (source, app_id, port)


def test_the_edge_is_reachable_and_reaches_only_sidecars(policies: list[Obj]) -> None:
    assert traffic_allowed(policies, INTERNET, GATEWAY, 8000)
    assert traffic_allowed(policies, INTERNET, GATEWAY, 8443)
    assert not traffic_allowed(policies, INTERNET, GATEWAY, 3500)  # the sidecar API
    assert not traffic_allowed(policies, GATEWAY, BROKER, 9093)
    assert not traffic_allowed(policies, GATEWAY, pg_pod("identity"), 5432)


@pytest.mark.parametrize("app_id", APP_IDS)
def test_each_app_reaches_only_its_own_database(policies: list[Obj], app_id: str) -> None:
    assert traffic_allowed(policies, app_pod(app_id), pg_pod(app_id), 5432)
    for other in APP_IDS:
        if other != app_id:
            assert not traffic_allowed(policies, app_pod(app_id), pg_pod(other), 5432), other
    assert not traffic_allowed(policies, intruder(app_namespace(app_id)), pg_pod(app_id), 5432)
    assert traffic_allowed(policies, CNPG_OPERATOR, pg_pod(app_id), 8000)
    assert traffic_allowed(policies, pg_pod(app_id), pg_pod(app_id), 5432)  # replication


@pytest.mark.parametrize("app_id", APP_IDS)
def test_apps_reach_the_brokers_tls_listener_only(policies: list[Obj], app_id: str) -> None:
    # Only apps with a pub/sub component talk to Kafka at all (not the partner simulator).
    assert traffic_allowed(policies, app_pod(app_id), BROKER, 9093) == (app_id in PUBSUB_APP_IDS)
    assert not traffic_allowed(policies, app_pod(app_id), BROKER, 9092)
    assert not traffic_allowed(policies, app_pod(app_id), BROKER, 9091)  # replication port


def test_brokers_serve_keda_and_prometheus_but_not_strangers(policies: list[Obj]) -> None:
    assert traffic_allowed(policies, KEDA, BROKER, 9093)
    assert traffic_allowed(policies, PROMETHEUS, BROKER, 9404)
    assert traffic_allowed(policies, BROKER, BROKER, 9091)
    assert not traffic_allowed(policies, intruder("default"), BROKER, 9093)
    assert not traffic_allowed(policies, intruder("kaya787-data"), BROKER, 9093)


@pytest.mark.parametrize("pod", [*(app_pod(a) for a in APP_IDS), GATEWAY], ids=str)
def test_sidecars_reach_control_plane_dns_and_tracing(policies: list[Obj], pod: Pod) -> None:
    for port in (50001, 6500, 50005, 50006):  # sentry, operator, placement, scheduler
        assert traffic_allowed(policies, pod, SENTRY, port), port
    assert traffic_allowed(policies, pod, DNS, 53, "UDP")
    assert traffic_allowed(policies, pod, JAEGER, 4317)  # sidecar spans
    assert traffic_allowed(policies, pod, JAEGER, 4318)  # app spans
    assert not traffic_allowed(policies, pod, JAEGER, 16686)  # not the query API
    assert traffic_allowed(policies, PROMETHEUS, pod, 9090)
    assert not traffic_allowed(policies, intruder("default"), pod, 9090)
    assert traffic_allowed(policies, PROMETHEUS, pod, 9464)  # an app's /metrics
    assert not traffic_allowed(policies, intruder("default"), pod, 9464)
    assert not traffic_allowed(policies, pod, intruder("default"), 80)


def test_only_apps_with_secrets_reach_the_api_server(objs: Objects, policies: list[Obj]) -> None:
    """The Kubernetes secret store in the sidecar calls the API server; nobody else needs to."""
    for app_id in APP_IDS:
        reads_secrets = bool(objs.of("Role", app_namespace(app_id)))
        assert traffic_allowed(policies, app_pod(app_id), INTERNET, 443) == reads_secrets, app_id
