"""The API server rejects what is wrong: server-side validation replaces schema files.

Each case takes a real object of the dev overlay, breaks one thing, and applies it to a
scratch namespace; the server must refuse it with a message that names the problem.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from tests.support.k8s import K8S, Obj, render
from tests.support.k8s_sim import Kube, KubectlError, wait_until

SCRATCH = "kaya787-sim-rejections"


@pytest.fixture(scope="module")
def scratch(kube: Kube, crds: list[str]) -> Iterator[str]:
    kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": SCRATCH,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                },
            }
        ]
    )
    # Pods need the namespace's default ServiceAccount (kube-controller-manager creates it).
    wait_until("the default ServiceAccount", lambda: kube.get("sa", "-n", SCRATCH, "default"), 30)
    yield SCRATCH
    kube.run("delete", "namespace", SCRATCH, "--wait=false", "--ignore-not-found")


@pytest.fixture(scope="module")
def dev() -> list[Obj]:
    return render(K8S / "overlays" / "dev")


def _one(objs: list[Obj], kind: str, name: str, namespace: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert found, (kind, name)
    obj = copy.deepcopy(found[0])
    obj["metadata"]["namespace"] = namespace
    return obj


def _rejected(kube: Kube, obj: Obj) -> str:
    with pytest.raises(KubectlError) as caught:
        kube.apply([obj])
    return caught.value.stderr


def test_a_valid_object_is_accepted(kube: Kube, scratch: str, dev: list[Obj]) -> None:
    """The control case: the unbroken objects go in (so the rejections below are real)."""
    kube.apply([_one(dev, "KafkaTopic", "accounts.postings.v1", scratch)])
    kube.apply([_one(dev, "Component", "statestore", scratch)])


def test_an_unknown_field_in_a_deployment_is_rejected(
    kube: Kube, scratch: str, dev: list[Obj]
) -> None:
    dep = _one(dev, "Deployment", "accounts", scratch)
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    # Server-side apply types the object against the schema: an undeclared field fails.
    assert (
        '.spec.template.spec.containers[name="app"].imagePullPolicyy: field not declared in schema'
        in _rejected(kube, dep)
    )


def test_a_wrong_type_in_a_deployment_is_rejected(kube: Kube, scratch: str, dev: list[Obj]) -> None:
    dep = _one(dev, "Deployment", "accounts", scratch)
    dep["spec"]["replicas"] = "three"
    assert "spec.replicas" in _rejected(kube, dep)


def test_a_custom_resource_breaking_its_crd_schema_is_rejected(
    kube: Kube, scratch: str, dev: list[Obj]
) -> None:
    topic = _one(dev, "KafkaTopic", "accounts.postings.v1", scratch)
    topic["spec"]["partitions"] = "three"
    assert "spec.partitions" in _rejected(kube, topic)
    scaled = _one(dev, "ScaledObject", "analytics", scratch)
    del scaled["spec"]["scaleTargetRef"]
    assert "spec.scaleTargetRef: Required value" in _rejected(kube, scaled)
    component = _one(dev, "Component", "statestore", scratch)
    component["spec"]["metadatas"] = component["spec"].pop("metadata")
    assert ".spec.metadatas: field not declared in schema" in _rejected(kube, component)


def test_a_pod_breaking_the_restricted_standard_is_forbidden(kube: Kube, scratch: str) -> None:
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": scratch},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "registry.example/c:1",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    assert 'violates PodSecurity "restricted' in _rejected(kube, pod)


def test_a_pod_without_dapr_annotations_gets_no_sidecar(kube: Kube, scratch: str) -> None:
    hardened = {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "namespace": scratch},
        "spec": {
            "containers": [
                {"name": "c", "image": "registry.example/c:1", "securityContext": hardened}
            ]
        },
    }
    kube.apply([pod])
    live = wait_until(
        "the plain pod to run",
        lambda: (
            (p := kube.get("pod", "-n", scratch, "plain"))["status"].get("phase") == "Running" and p
        ),
        timeout=30,
    )
    assert [c["name"] for c in live["spec"]["containers"]] == ["c"]
