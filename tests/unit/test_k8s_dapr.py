"""The production Dapr resources keep the names, scopes and rules of the local profile.

Each app lives in its own namespace (kaya787-<app-id>) with its own components named as
locally (statestore, pubsub, secretstore) and its own Configuration `kaya787`, whose access
control is the local one with the callers' namespaces filled in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kaya787_identity.settings import IdentitySettings

from tests.support.k8s import (
    APP_IDS,
    K8S,
    OVERLAYS,
    PUBSUB_APP_IDS,
    Obj,
    Objects,
    app_namespace,
    container,
    env_file,
    env_of,
    load_yaml,
    load_yaml_all,
    metadata_values,
    objects,
    pod_template,
    run_file_app,
)
from tests.support.platform import ROOT

DAPR = ROOT / "dapr"
GATEWAY_NAMESPACE = "kaya787-gateway"
# Fields of a retry policy that Dapr's Resiliency API has (pkg/apis/resiliency/v1alpha1);
# anything else in a file is dropped by Dapr (and pruned by the API server).
RETRY_FIELDS = {"policy", "duration", "maxInterval", "maxRetries", "matching"}


@pytest.fixture(params=OVERLAYS, scope="module")
def objs(request: pytest.FixtureRequest) -> Objects:
    return objects(request.param)


def local_components(app_id: str) -> dict[str, Obj]:
    """The components `app_id`'s sidecar loads locally (its resourcesPaths, its scopes)."""
    found: dict[str, Obj] = {}
    for relative in run_file_app(app_id)["resourcesPaths"]:
        folder = (DAPR / relative).resolve()
        for component in load_yaml_all(sorted(folder.glob("*.yaml"))):
            scopes = component.get("scopes")
            if component["kind"] == "Component" and (not scopes or app_id in scopes):
                found[component["metadata"]["name"]] = component
    return found


def local_config(app_id: str) -> Obj:
    path = DAPR / run_file_app(app_id)["configFilePath"]
    config: Obj = load_yaml(path)
    return config


def k8s_components(objs: Objects, app_id: str) -> dict[str, Obj]:
    return {c["metadata"]["name"]: c for c in objs.of("Component", app_namespace(app_id))}


def _scope_entry(value: str, app_id: str) -> list[str]:
    entries = dict(entry.split("=", 1) for entry in value.split(";") if entry)
    return [topic for topic in entries[app_id].split(",") if topic]


def _outbox_topic(namespace: str, app_id: str, topic: str) -> str:
    # Dapr names the outbox's internal topic <namespace><app-id><topic>outbox.
    return f"{namespace}{app_id}{topic}outbox"


@pytest.mark.parametrize("app_id", APP_IDS)
def test_each_app_has_the_components_it_loads_locally(objs: Objects, app_id: str) -> None:
    local = local_components(app_id)
    ours = k8s_components(objs, app_id)
    # Only apps that publish or subscribe load the pub/sub component (not the partner).
    pubsub = {"pubsub"} if app_id in PUBSUB_APP_IDS else set()
    assert set(ours) == set(local) == {"statestore", "secretstore", *pubsub}
    for name, component in ours.items():
        assert component.get("scopes") == [app_id], name


def test_the_gateway_has_no_components(objs: Objects) -> None:
    assert objs.of("Component", GATEWAY_NAMESPACE) == []


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_state_store_is_the_apps_own_postgresql(objs: Objects, app_id: str) -> None:
    namespace = app_namespace(app_id)
    store = k8s_components(objs, app_id)["statestore"]
    assert (store["spec"]["type"], store["spec"]["version"]) == ("state.postgresql", "v2")
    values = metadata_values(store)
    cluster = objs.one("Cluster", f"{app_id}-pg", namespace)
    # CloudNativePG writes <cluster>-app with a `uri` key for the bootstrap database owner.
    assert values["connectionString"] == {
        "name": f"{cluster['metadata']['name']}-app",
        "key": "uri",
    }
    assert cluster["spec"]["bootstrap"]["initdb"]["owner"] == app_id


@pytest.mark.parametrize("app_id", APP_IDS)
def test_state_store_behaviour_is_as_locally(objs: Objects, app_id: str) -> None:
    """Outbox and actor settings are behaviour, not backend: they must not differ."""
    behaviour = {"actorStateStore", "outboxPublishPubsub", "outboxPublishTopic"}
    local = metadata_values(local_components(app_id)["statestore"])
    ours = metadata_values(k8s_components(objs, app_id)["statestore"])
    assert {k: v for k, v in ours.items() if k in behaviour} == {
        k: v for k, v in local.items() if k in behaviour
    }


@pytest.mark.parametrize("app_id", PUBSUB_APP_IDS)
def test_pubsub_is_kafka_with_one_consumer_group_per_app(objs: Objects, app_id: str) -> None:
    namespace = app_namespace(app_id)
    pubsub = k8s_components(objs, app_id)["pubsub"]
    assert pubsub["spec"]["type"] == "pubsub.kafka"
    values = metadata_values(pubsub)
    assert values["consumerGroup"] == "{appID}"
    # TLS, verified with the CA that cert-manager puts into this namespace.
    assert values["authType"] == "certificate"
    trust = objs.one("Certificate", "kafka-trust", namespace)
    assert values["caCert"] == {"name": trust["spec"]["secretName"], "key": "ca.crt"}


@pytest.mark.parametrize("app_id", PUBSUB_APP_IDS)
def test_topic_scopes_are_the_local_ones(objs: Objects, app_id: str) -> None:
    namespace = app_namespace(app_id)
    local = metadata_values(local_components(app_id)["pubsub"])
    ours = metadata_values(k8s_components(objs, app_id)["pubsub"])
    for key in ("publishingScopes", "subscriptionScopes"):
        expected = [
            _outbox_topic(
                namespace, app_id, topic.removeprefix(f"default{app_id}")[: -len("outbox")]
            )
            if topic.endswith("outbox")
            else topic
            for topic in _scope_entry(local[key], app_id)
        ]
        assert _scope_entry(ours[key], app_id) == expected, key
        assert ours[key].count("=") == 1, "only this app's entry: the component is its alone"


@pytest.mark.parametrize("app_id", APP_IDS)
def test_the_secret_store_is_kubernetes_and_scoped(objs: Objects, app_id: str) -> None:
    store = k8s_components(objs, app_id)["secretstore"]
    assert store["spec"]["type"] == "secretstores.kubernetes"
    annotations = pod_template(objs.one("Deployment", app_id, app_namespace(app_id)))["metadata"][
        "annotations"
    ]
    # Only our scoped store: Dapr's built-in one would see every Secret the account can read.
    assert annotations["dapr.io/disable-builtin-k8s-secret-store"] == "true"


def _secret_scope(objs: Objects, app_id: str) -> Obj:
    config = objs.one("Configuration", "kaya787", app_namespace(app_id))
    scopes: list[Obj] = config["spec"]["secrets"]["scopes"]
    assert [s["storeName"] for s in scopes] == ["secretstore"]
    return scopes[0]


@pytest.mark.parametrize("app_id", APP_IDS)
def test_secret_access_is_denied_by_default_and_rbac_matches(objs: Objects, app_id: str) -> None:
    namespace = app_namespace(app_id)
    scope = _secret_scope(objs, app_id)
    assert scope["defaultAccess"] == "deny"
    allowed = set(scope.get("allowedSecrets", []))
    readable: set[str] = set()
    for role in objs.of("Role", namespace):
        for rule in role["rules"]:
            if "secrets" in rule["resources"]:
                # A rule without resourceNames would grant every Secret in the namespace.
                assert rule.get("resourceNames"), role["metadata"]["name"]
                assert rule["verbs"] == ["get"]
                readable |= set(rule["resourceNames"])
    assert readable == allowed


def test_identity_may_read_exactly_the_secrets_it_uses(objs: Objects) -> None:
    fields = IdentitySettings.model_fields
    used = {
        fields["signing_keys_secret"].default,
        fields["clients_secret"].default,
        fields["staff_secret"].default,
    }
    assert set(_secret_scope(objs, "identity")["allowedSecrets"]) == used


def _acl_as_set(acl: Obj) -> set[tuple[Any, ...]]:
    """Everything an access-control list decides, except the callers' namespaces."""
    rows: set[tuple[Any, ...]] = {("default", acl["defaultAction"], acl.get("trustDomain"))}
    for policy in acl.get("policies", []):
        caller = policy["appId"]
        rows.add((caller, policy["trustDomain"], policy["defaultAction"], "policy"))
        for op in policy["operations"]:
            rows.add((caller, op["name"], tuple(sorted(op["httpVerb"])), op["action"]))
    return rows


@pytest.mark.parametrize("app_id", [*APP_IDS, "gateway"])
def test_access_control_is_the_local_one_with_namespaces(objs: Objects, app_id: str) -> None:
    namespace = app_namespace(app_id)
    ours = objs.one("Configuration", "kaya787", namespace)["spec"]["accessControl"]
    local = local_config(app_id)["spec"]["accessControl"]
    assert ours["defaultAction"] == "deny"
    assert _acl_as_set(ours) == _acl_as_set(local)
    # Each caller is named in its own namespace (Dapr matches app id and namespace).
    for policy in ours.get("policies", []):
        assert policy["namespace"] == app_namespace(policy["appId"]), policy["appId"]


@pytest.mark.parametrize("app_id", [*APP_IDS, "gateway"])
def test_configurations_trace_to_the_collector_and_keep_metrics_on(
    objs: Objects, app_id: str
) -> None:
    spec = objs.one("Configuration", "kaya787", app_namespace(app_id))["spec"]
    assert spec["metrics"]["enabled"] is True
    assert spec["tracing"]["otel"]["endpointAddress"] == (
        "jaeger-collector.observability.svc.cluster.local:4317"
    )
    assert float(spec["tracing"]["samplingRate"]) > 0
    helm = load_yaml(K8S / "helm" / "dapr.yaml")["global"]["mtls"]
    assert spec["mtls"]["enabled"] is True
    assert helm["enabled"] is True
    assert spec["mtls"]["controlPlaneTrustDomain"] == helm["controlPlaneTrustDomain"]
    assert spec["mtls"]["sentryAddress"] == "dapr-sentry.dapr-system.svc.cluster.local:443"


def test_the_tracing_endpoint_is_the_jaeger_of_the_prod_overlay() -> None:
    jaeger = objects("prod").one("Jaeger", "jaeger", "observability")
    assert f"{jaeger['metadata']['name']}-collector.observability" in (
        "jaeger-collector.observability.svc.cluster.local:4317"
    )


def _normalised_policies(policies: Obj) -> Obj:
    retries = {
        name: {k: v for k, v in retry.items() if k in RETRY_FIELDS}
        for name, retry in policies.get("retries", {}).items()
    }
    return {**policies, "retries": retries}


@pytest.mark.parametrize("app_id", APP_IDS)
def test_resiliency_is_the_local_policy(objs: Objects, app_id: str) -> None:
    local: Obj = load_yaml(DAPR / "resiliency" / "resiliency.yaml")
    ours = objs.one("Resiliency", "kaya787", app_namespace(app_id))
    assert ours["metadata"]["name"] == local["metadata"]["name"]
    assert _normalised_policies(ours["spec"]["policies"]) == _normalised_policies(
        local["spec"]["policies"]
    )
    assert ours["spec"]["targets"]["components"] == local["spec"]["targets"]["components"]
    # Invocation targets are keyed as the app invokes its peers (<app-id>.<namespace>), with
    # the policy the local file gives that peer.
    invoked = {
        value
        for name, value in env_of(
            container(objs.one("Deployment", app_id, app_namespace(app_id)))
        ).items()
        if name.endswith("_APP_ID")
    }
    targets = ours["spec"]["targets"].get("apps", {})
    assert set(targets) == invoked
    for target, policy in targets.items():
        assert policy == local["spec"]["targets"]["apps"][target.split(".")[0]], target


def test_the_gateway_resiliency_is_the_local_edge_policy(objs: Objects) -> None:
    local: Obj = load_yaml(DAPR / "resiliency" / "edge.yaml")
    ours = objs.one("Resiliency", local["metadata"]["name"], GATEWAY_NAMESPACE)["spec"]
    assert ours["policies"] == local["spec"]["policies"]
    assert "retries" not in ours["policies"]  # the public API has non-idempotent POSTs
    targets = ours["targets"]["apps"]
    assert set(targets) == {f"{app}.{app_namespace(app)}" for app in APP_IDS}
    for target, policy in targets.items():
        assert policy == local["spec"]["targets"]["apps"][target.split(".")[0]]


def test_the_local_policies_are_scoped_the_apps_to_one_the_gateway_to_the_other() -> None:
    apps: Obj = load_yaml(DAPR / "resiliency" / "resiliency.yaml")
    edge: Obj = load_yaml(DAPR / "resiliency" / "edge.yaml")
    assert sorted(apps["scopes"]) == sorted(APP_IDS)
    assert edge["scopes"] == ["gateway"]
    assert set(apps["spec"]["targets"]["apps"]) == set(edge["spec"]["targets"]["apps"])


def test_the_dapr_control_plane_values() -> None:
    values = load_yaml(K8S / "helm" / "dapr.yaml")
    runtime = env_file(ROOT / "tools" / "versions.env")["DAPR_RUNTIME_VERSION"]
    charts = env_file(K8S / "helm" / "versions.env")
    # The cluster runs the runtime the local platform and its tests use.
    assert values["global"]["tag"] == runtime == charts["DAPR_CHART_VERSION"]
    assert values["global"]["ha"]["enabled"] is True
    assert values["global"]["mtls"]["enabled"] is True
    assert values["global"]["logAsJson"] is True
    # The restricted Pod Security Standard needs the sidecar to drop every capability.
    assert values["dapr_sidecar_injector"]["sidecarDropALLCapabilities"] is True


def test_the_kong_pods_carry_the_gateway_sidecar(objs: Objects) -> None:
    annotations: dict[str, str] = load_yaml(K8S / "helm" / "kong.yaml")["podAnnotations"]
    assert annotations["dapr.io/enabled"] == "true"
    assert annotations["dapr.io/app-id"] == "gateway" == run_file_app("gateway")["appID"]
    objs.one("Configuration", annotations["dapr.io/config"], GATEWAY_NAMESPACE)
    assert annotations["dapr.io/api-token-secret"] == "gateway-dapr-api-token"
    assert annotations["dapr.io/sidecar-listen-addresses"] == "127.0.0.1"
    assert "dapr.io/app-port" not in annotations  # nobody invokes the gateway


def test_the_local_files_are_where_the_run_file_says() -> None:
    for app_id in [*APP_IDS, "gateway"]:
        assert Path(DAPR / run_file_app(app_id)["configFilePath"]).is_file(), app_id
