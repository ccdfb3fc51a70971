"""The simulator itself: the pinned control plane, fake nodes, Dapr's control plane in it."""

from __future__ import annotations

import base64
import json

from tests.support.k8s_sim import KUBE_VERSION, Kube, condition


def test_the_api_server_is_the_pinned_kubernetes(kube: Kube) -> None:
    version = json.loads(kube.run("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == KUBE_VERSION
    assert version["clientVersion"]["gitVersion"] == KUBE_VERSION


def test_three_fake_nodes_are_ready_one_per_zone(kube: Kube) -> None:
    nodes = kube.items("nodes")
    assert len(nodes) == 3
    assert all(condition(n, "Ready") == "True" for n in nodes)
    zones = {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes}
    assert zones == {"zone-a", "zone-b", "zone-c"}
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)


def test_controller_manager_and_scheduler_act(kube: Kube) -> None:
    """The service-account controllers ran (kube-controller-manager), and the Dapr control
    plane's simulated Pods were bound to a node (kube-scheduler) and run (kwok)."""
    accounts = {o["metadata"]["name"] for o in kube.items("serviceaccounts", "-n", "kube-system")}
    assert {"replicaset-controller", "deployment-controller"} <= accounts
    pods = kube.items("pods", "-n", "dapr-system")
    assert {p["metadata"]["name"] for p in pods} == {
        "dapr-sentry",
        "dapr-operator",
        "dapr-injector",
    }
    for pod in pods:
        assert pod["spec"]["nodeName"].startswith("kaya-sim-")
        assert pod["status"]["phase"] == "Running"


def test_sentry_wrote_the_trust_bundle_and_the_injector_its_ca(kube: Kube) -> None:
    bundle = kube.get("configmap", "-n", "dapr-system", "dapr-trust-bundle")
    assert bundle["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    hook = kube.get("mutatingwebhookconfiguration", "dapr-sidecar-injector")
    ca_bundle = base64.b64decode(hook["webhooks"][0]["clientConfig"]["caBundle"]).decode()
    assert ca_bundle.strip() == bundle["data"]["ca.crt"].strip()
