"""What the manifests promise about change, observed from the API: a scale-out through the
HPA, and a rolling update that never has fewer Ready pods than wanted (maxUnavailable 0,
maxSurge 1; a pod counts once its readiness says so - kwok makes a pod Ready 1-2.2 s after
it is bound, so the in-between states are observable)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from tests.k8s.conftest import Deployed
from tests.support.k8s import Obj
from tests.support.k8s_sim import Kube, pod_ready, wait_until

APP = "identity"
NS = f"kaya787-{APP}"
SELECTOR = f"app.kubernetes.io/name={APP}"
REPLICAS = 3

pytestmark = pytest.mark.parametrize("deployed", ["dev"], indirect=True)


@dataclass(frozen=True)
class Sample:
    ready: int  # Ready pods not being deleted
    live: int  # pods not being deleted
    available: int  # the Deployment's availableReplicas
    hashes: frozenset[str]  # pod-template-hash of the live pods


def _sample(kube: Kube) -> tuple[Sample, Obj, list[Obj]]:
    items = kube.items("deployment,pods", "-n", NS, "-l", SELECTOR)
    (dep,) = [o for o in items if o["kind"] == "Deployment"]
    pods = [o for o in items if o["kind"] == "Pod" and "deletionTimestamp" not in o["metadata"]]
    sample = Sample(
        ready=sum(1 for p in pods if pod_ready(p)),
        live=len(pods),
        available=int(dep.get("status", {}).get("availableReplicas", 0)),
        hashes=frozenset(p["metadata"]["labels"]["pod-template-hash"] for p in pods),
    )
    return sample, dep, pods


def _ready_ips(kube: Kube) -> set[str]:
    slices = kube.items("endpointslices", "-n", NS, "-l", f"kubernetes.io/service-name={APP}")
    return {
        address
        for s in slices
        for e in s.get("endpoints") or []
        if e.get("conditions", {}).get("ready")
        for address in e["addresses"]
    }


def test_scale_out_through_the_hpa(kube: Kube, deployed: Deployed) -> None:
    assert deployed.overlay == "dev"
    dep = kube.get("deployment", "-n", NS, APP)
    assert dep["spec"]["replicas"] == 1
    kube.run("patch", "hpa", "-n", NS, APP, "--type", "merge", "-p", '{"spec":{"minReplicas":3}}')

    def scaled() -> tuple[Sample, list[Obj]] | None:
        sample, dep, pods = _sample(kube)
        done = dep["spec"]["replicas"] == REPLICAS and sample.ready == sample.available == REPLICAS
        return (sample, pods) if done else None

    # The Deployment's availableReplicas follows the pods' readiness a moment later.
    sample, pods = wait_until("the HPA to scale identity out to 3 available pods", scaled, 60)
    assert sample.live == REPLICAS
    assert all([c["name"] for c in p["spec"]["containers"]] == ["app", "daprd"] for p in pods)
    ips = {p["status"]["podIP"] for p in pods}
    wait_until("3 ready endpoints", lambda: _ready_ips(kube) == ips, 30)
    hpa = kube.get("hpa", "-n", NS, APP)
    assert hpa["status"]["desiredReplicas"] == REPLICAS


def test_rolling_update_keeps_every_replica_ready(kube: Kube, deployed: Deployed) -> None:
    before, dep, _ = _sample(kube)
    assert before.ready == REPLICAS, "the scale-out test runs first"
    assert len(before.hashes) == 1
    strategy = dep["spec"]["strategy"]["rollingUpdate"]
    assert (strategy["maxUnavailable"], strategy["maxSurge"]) == (0, 1)
    kube.run("rollout", "restart", "deployment", "-n", NS, APP)

    samples: list[Sample] = []
    deadline = time.monotonic() + 90
    while True:
        sample, dep, pods = _sample(kube)
        samples.append(sample)
        status = dep.get("status", {})
        done = (
            status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
            and status.get("updatedReplicas") == REPLICAS
            and sample.ready == REPLICAS
            and sample.live == REPLICAS
            and sample.hashes.isdisjoint(before.hashes)
        )
        if done:
            break
        assert time.monotonic() < deadline, f"rollout not done in 90 s: {samples[-3:]}"
        time.sleep(0.05)

    # maxUnavailable 0: never fewer Ready pods (nor available replicas) than wanted;
    # maxSurge 1: never more than one pod above it.
    assert min(s.ready for s in samples) >= REPLICAS, samples
    assert min(s.available for s in samples) >= REPLICAS, samples
    assert max(s.live for s in samples) <= REPLICAS + 1, samples
    # The surge was seen: a new pod existed, not yet Ready, beside the three old ones.
    assert any(s.live == REPLICAS + 1 and s.ready == REPLICAS for s in samples), samples
    # Every new pod was injected again, and the Service now points at the new pods only.
    assert all([c["name"] for c in p["spec"]["containers"]] == ["app", "daprd"] for p in pods)
    ips = {p["status"]["podIP"] for p in pods}
    wait_until("the endpoints to be the new pods", lambda: _ready_ips(kube) == ips, 30)
