"""Fixtures of the simulator tests: the API server, the CRDs, and an overlay applied for real.

Run with `make test-k8s` (starts tools/k8s-sim/sim.sh if needed). Without a running
simulator these tests are skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.k8s import K8S, Obj, render
from tests.support.k8s_sim import CRDS, Kube, condition, wait_until

# Objects without a namespace in the overlays.
CLUSTER_SCOPED = {"Namespace", "ClusterIssuer", "ClusterRole", "ClusterRoleBinding"}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Deployed:
    overlay: str
    objs: list[Obj]

    def of(self, kind: str) -> list[Obj]:
        return [o for o in self.objs if o["kind"] == kind]

    def namespaces(self) -> list[str]:
        """The overlay's own namespaces and the ones its objects use besides (created by the
        operators' Helm releases on a real cluster)."""
        own = [str(o["metadata"]["name"]) for o in self.of("Namespace")]
        used = {str(o["metadata"]["namespace"]) for o in self.objs if "namespace" in o["metadata"]}
        return own + sorted(used - set(own))


@pytest.fixture(scope="session")
def kube() -> Kube:
    client = Kube()
    if not client.reachable():
        pytest.skip("the Kubernetes simulator is not running: `make test-k8s` or `make k8s-sim`")
    return client


@pytest.fixture(scope="session")
def crds(kube: Kube) -> list[str]:
    """Every CRD the overlays need, applied and Established before anything else."""
    kube.apply_files(sorted(CRDS.glob("*.yaml")))
    names = [
        str(o["metadata"]["name"])
        for o in kube.items("crd", "-l", "app.kubernetes.io/part-of=kaya787-k8s-sim")
    ]
    assert names

    def established() -> bool:
        return all(
            condition(crd, "Established") == "True"
            for crd in kube.items("crd", "-l", "app.kubernetes.io/part-of=kaya787-k8s-sim")
        )

    wait_until("the CRDs to be Established", established, timeout=60)
    return names


def rolled_out(kube: Kube, deployed: Deployed) -> bool:
    """Every Deployment of the overlay runs, updated and available, the replicas it should:
    its HPA's minReplicas as it is now on the server (the HPA controller raises a Deployment
    without `replicas` to it; no CPU metrics exist here), else 1 (KEDA is not in the
    simulator: the ScaledObject is validated and stored, but no controller acts on it).
    One list call per poll."""
    live = kube.items("deployments.apps,horizontalpodautoscalers.autoscaling", "-A")
    mins = {
        (o["metadata"]["namespace"], o["spec"]["scaleTargetRef"]["name"]): o["spec"]["minReplicas"]
        for o in live
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    deployments = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for o in live
        if o["kind"] == "Deployment"
    }
    for dep in deployed.of("Deployment"):
        key = (dep["metadata"]["namespace"], dep["metadata"]["name"])
        current = deployments.get(key)
        if current is None:
            return False
        want = mins.get(key, 1)
        status = current.get("status", {})
        if current["spec"]["replicas"] != want:
            return False
        if status.get("observedGeneration", 0) < current["metadata"]["generation"]:
            return False
        for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
            if status.get(field) != want:
                return False
    return True


@pytest.fixture(scope="session", params=["dev", "prod"])
def deployed(request: pytest.FixtureRequest, kube: Kube, crds: list[str]) -> Iterator[Deployed]:
    """An overlay applied for real: namespaces first, then everything else, then every
    Deployment rolled out (simulated by kwok). Removed again afterwards."""
    overlay = str(request.param)
    objs = render(K8S / "overlays" / overlay)
    deployed = Deployed(overlay, objs)
    _say(f"==> applying k8s/overlays/{overlay} ({len(objs)} objects) to the simulator")
    # Namespaces first: the overlay's own, and those its objects use that the operators' Helm
    # releases create on a real cluster (e.g. cert-manager's, for the platform CA).
    own = {str(o["metadata"]["name"]) for o in deployed.of("Namespace")}
    existing = {str(o["metadata"]["name"]) for o in kube.items("namespaces")}
    created = [ns for ns in deployed.namespaces() if ns not in existing]
    kube.apply(deployed.of("Namespace"))
    kube.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in deployed.namespaces()
        if ns not in own
    )
    for ns in deployed.namespaces():

        def active(ns: str = ns) -> bool:
            return bool(kube.get("namespace", ns)["status"].get("phase") == "Active")

        wait_until(f"namespace {ns} Active", active, timeout=30)
    kube.apply(o for o in objs if o["kind"] != "Namespace")
    wait_until(f"every Deployment of {overlay} rolled out", lambda: rolled_out(kube, deployed), 120)
    yield deployed
    _say(f"==> removing k8s/overlays/{overlay} from the simulator")
    for obj in objs:
        if obj["kind"] in CLUSTER_SCOPED - {"Namespace"}:
            kube.run("delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found")
    if created:
        kube.run("delete", "namespace", "--wait=false", "--ignore-not-found", *created)
    wait_until(
        f"the namespaces of {overlay} to be gone",
        lambda: not any(o["metadata"]["name"] in created for o in kube.items("namespace")),
        timeout=120,
    )
