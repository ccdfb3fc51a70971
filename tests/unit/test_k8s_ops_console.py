"""The ops console's Kubernetes manifests (k8s/ops), rendered and validated offline:
schemas, read-only RBAC, a hardened pod, NetworkPolicies, settings the app accepts; and
its Kubernetes discovery run over the rendered overlay's Deployments."""

from __future__ import annotations

import asyncio
import functools

import pytest
from kaya787_ops.kubernetes import KubernetesDirectory
from kaya787_ops.settings import OpsSettings

from tests.fakes.ops import FakeKubernetesApi
from tests.support.k8s import (
    APP_IDS,
    K8S,
    OVERLAYS,
    Obj,
    Objects,
    objects,
    pod_template,
    render,
    validation_errors,
)

READ_ONLY = {"get", "list", "watch"}


@functools.cache
def ops() -> Objects:
    return Objects(tuple(render(K8S / "ops")))


def test_every_object_is_valid() -> None:
    errors = [e for obj in ops().items for e in validation_errors(obj)]
    assert errors == []


def test_rbac_is_read_only_and_never_reads_secrets() -> None:
    roles = ops().of("ClusterRole") + ops().of("Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= READ_ONLY, rule
            assert "*" not in rule["resources"], rule
            assert "*" not in rule["apiGroups"], rule
            assert "secrets" not in rule["resources"], rule
            assert not {"pods/exec", "pods/log"} & set(rule["resources"]), rule
    (trust,) = ops().of("Role")
    assert trust["rules"][0]["resourceNames"] == ["dapr-trust-bundle"]
    bound = {b["roleRef"]["name"] for b in ops().of("ClusterRoleBinding") + ops().of("RoleBinding")}
    assert bound == {r["metadata"]["name"] for r in roles}


def _console() -> Obj:
    return ops().one("Deployment", "ops-console", "kaya787-ops")


def test_the_pod_is_hardened_and_has_no_sidecar() -> None:
    template = pod_template(_console())
    assert "dapr.io/enabled" not in (template["metadata"].get("annotations") or {})
    spec = template["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["limits"]
    assert container["resources"]["requests"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    namespace = ops().one("Namespace", "kaya787-ops")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_each_variable_is_a_setting_and_the_app_accepts_them() -> None:
    (container,) = pod_template(_console())["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    fields = {f"OPS_{name.upper()}" for name in OpsSettings.model_fields}
    assert set(env) <= fields, set(env) - fields
    settings = OpsSettings(**{k.removeprefix("OPS_").lower(): v for k, v in env.items()})
    assert settings.discovery == "kubernetes"
    assert settings.secure_cookies is True
    assert settings.redirect_uri == "https://ops.kaya787.example/auth/callback"


def test_the_console_refuses_a_non_loopback_bind_unless_told() -> None:
    with pytest.raises(ValueError, match="loopback"):
        OpsSettings(host="0.0.0.0")


def _policies(namespace: str) -> list[Obj]:
    return [p for p in ops().of("NetworkPolicy") if p["metadata"]["namespace"] == namespace]


def test_network_policies_deny_by_default_and_admit_only_kong() -> None:
    policies = _policies("kaya787-ops")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert deny
    assert deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny[0]["spec"]
    assert "egress" not in deny[0]["spec"]
    sources = [
        peer
        for p in policies
        for rule in p["spec"].get("ingress") or []
        for peer in rule.get("from") or [{}]
    ]
    assert sources
    for peer in sources:
        assert peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "kaya787-gateway"
        }
        assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kong"}
    (kong,) = _policies("kaya787-gateway")
    assert kong["spec"]["policyTypes"] == ["Egress"]  # adds an egress, takes nothing away


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_discovery_finds_every_dapr_app_of_the_overlay(overlay: str) -> None:
    # The Kubernetes API's Deployment list, answered from the rendered overlay.
    deployments = {"/apis/apps/v1/deployments": {"items": [*objects(overlay).of("Deployment")]}}
    directory = KubernetesDirectory(FakeKubernetesApi(deployments))  # type: ignore[arg-type]
    targets = asyncio.run(directory.targets())
    assert sorted(t.app_id for t in targets) == sorted(APP_IDS)
    for target in targets:
        assert target.http_url.startswith(f"http://{target.app_id}-dapr.kaya787-{target.app_id}.")
