"""Both overlays applied for real to the simulator: every object accepted by the API server
(strict server-side field validation, CRD schemas), every Deployment rolled out with the
Dapr sidecar injected as its annotations ask, Services with EndpointSlices, autoscalers,
NetworkPolicies and PodDisruptionBudgets in place."""

from __future__ import annotations

import pytest

from tests.k8s.conftest import CLUSTER_SCOPED, Deployed, rolled_out
from tests.support.k8s import APP_IDS, Obj
from tests.support.k8s_sim import Kube, condition, pod_ready, wait_until


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (str(obj["kind"]), str(meta.get("namespace", "")), str(meta["name"]))


def _arg(args: list[str], flag: str) -> str | None:
    """The value after `flag` in a container's args (None when the flag is absent)."""
    for i, item in enumerate(args):
        if item == flag:
            return args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else ""
        if item.startswith(flag + "="):
            return item.split("=", 1)[1]
    return None


def _pods(kube: Kube, dep: Obj) -> list[Obj]:
    meta = dep["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
    return kube.items("pods", "-n", meta["namespace"], "-l", selector)


def test_the_crds_are_established(kube: Kube, crds: list[str]) -> None:
    for name in crds:
        assert condition(kube.get("crd", name), "Established") == "True", name
    # Dapr's own (installed with its control plane) are there too.
    for name in ("components", "configurations", "resiliencies", "subscriptions"):
        assert condition(kube.get("crd", f"{name}.dapr.io"), "Established") == "True"


def test_every_object_of_the_overlay_is_stored(kube: Kube, deployed: Deployed) -> None:
    """Each rendered object exists on the server: kinds, namespaces, names (one list call
    per resource type)."""
    by_resource: dict[str, set[tuple[str, str, str]]] = {}
    for obj in deployed.objs:
        api = str(obj["apiVersion"])
        group = api.split("/")[0] if "/" in api else ""
        resource = f"{obj['kind']}.{group}" if group else str(obj["kind"])
        by_resource.setdefault(resource, set()).add(_key(obj))
    missing = []
    for resource, want in sorted(by_resource.items()):
        kind = resource.split(".")[0]
        args = [resource] if kind in CLUSTER_SCOPED else [resource, "-A"]
        live = {_key(o | {"kind": kind}) for o in kube.items(*args)}
        missing += sorted(want - live)
    assert missing == []


def test_every_deployment_runs_its_replicas(kube: Kube, deployed: Deployed) -> None:
    assert rolled_out(kube, deployed)
    deployments = deployed.of("Deployment")
    assert {d["metadata"]["name"] for d in deployments} == set(APP_IDS)
    for dep in deployments:
        pods = _pods(kube, dep)
        assert pods
        assert all(p["status"]["phase"] == "Running" and pod_ready(p) for p in pods)
        assert all(p["spec"]["nodeName"].startswith("kaya-sim-") for p in pods)


def test_every_app_pod_has_the_daprd_sidecar_its_annotations_ask_for(
    kube: Kube, deployed: Deployed
) -> None:
    bundle = kube.get("configmap", "-n", "dapr-system", "dapr-trust-bundle")
    trust_anchors = bundle["data"]["ca.crt"].strip()
    for dep in deployed.of("Deployment"):
        want = dep["spec"]["template"]["metadata"]["annotations"]
        app_id = want["dapr.io/app-id"]
        for pod in _pods(kube, dep):
            names = [c["name"] for c in pod["spec"]["containers"]]
            assert names == ["app", "daprd"], (app_id, names)
            daprd = pod["spec"]["containers"][1]
            args: list[str] = daprd["args"]
            assert daprd["image"].endswith(":1.18.2")
            assert _arg(args, "--mode") == "kubernetes"
            assert _arg(args, "--app-id") == app_id
            assert _arg(args, "--app-port") == want["dapr.io/app-port"]
            assert _arg(args, "--app-protocol") == want["dapr.io/app-protocol"]
            assert _arg(args, "--config") == want["dapr.io/config"]
            assert _arg(args, "--enable-mtls") == "", "mTLS (daprsystem Configuration) not on"
            assert _arg(args, "--sentry-address") == "dapr-sentry.dapr-system.svc.cluster.local:443"
            assert _arg(args, "--dapr-listen-addresses") == "127.0.0.1"
            assert _arg(args, "--metrics-port") == want["dapr.io/metrics-port"]
            assert _arg(args, "--log-level") == want["dapr.io/log-level"]
            assert _arg(args, "--log-as-json") == ""
            assert _arg(args, "--enable-app-health-check") == ""
            assert _arg(args, "--app-health-check-path") == want["dapr.io/app-health-check-path"]
            assert _arg(args, "--disable-builtin-k8s-secret-store") == ""
            assert (
                _arg(args, "--dapr-graceful-shutdown-seconds")
                == (want["dapr.io/graceful-shutdown-seconds"])
            )
            # Shutdown: the sidecar serves its draining app until it exits (operations.md),
            # and the pod keeps the app's preStop and grace period as the manifest has them.
            assert (
                _arg(args, "--dapr-block-shutdown-duration")
                == (want["dapr.io/block-shutdown-duration"])
            )
            app = pod["spec"]["containers"][0]
            assert app["lifecycle"]["preStop"]["sleep"]["seconds"] > 0, app_id
            assert (
                pod["spec"]["terminationGracePeriodSeconds"]
                == (dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
            )
            resources = daprd["resources"]
            assert resources["requests"] == {
                "cpu": want["dapr.io/sidecar-cpu-request"],
                "memory": want["dapr.io/sidecar-memory-request"],
            }
            assert resources["limits"] == {
                "cpu": want["dapr.io/sidecar-cpu-limit"],
                "memory": want["dapr.io/sidecar-memory-limit"],
            }
            env = {e["name"]: e for e in daprd["env"]}
            # mTLS: the sidecar trusts what Sentry wrote into the trust bundle.
            assert env["DAPR_TRUST_ANCHORS"]["value"].strip() == trust_anchors
            token = env["DAPR_API_TOKEN"]["valueFrom"]["secretKeyRef"]
            assert token["name"] == want["dapr.io/api-token-secret"]
            app_token = env["APP_API_TOKEN"]["valueFrom"]["secretKeyRef"]
            assert app_token["name"] == want["dapr.io/app-token-secret"]
            security = daprd["securityContext"]
            assert security["runAsNonRoot"] is True
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            assert (
                security["seccompProfile"]["type"] == want["dapr.io/sidecar-seccomp-profile-type"]
            )
            assert {"name": "dapr-metrics", "containerPort": 9090, "protocol": "TCP"} in daprd[
                "ports"
            ]


def test_services_get_endpoint_slices_of_ready_pods(kube: Kube, deployed: Deployed) -> None:
    """The app Services target the sidecar's `dapr-metrics` port by name: their slices
    resolve it only because the injected daprd container declares it."""
    for dep in deployed.of("Deployment"):
        meta = dep["metadata"]
        ns, name = meta["namespace"], meta["name"]
        pod_ips = {p["status"]["podIP"] for p in _pods(kube, dep)}

        def sliced(ns: str = ns, name: str = name, pod_ips: set[str] = pod_ips) -> bool:
            slices = kube.items(
                "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={name}"
            )
            ready = {
                address
                for s in slices
                for e in s.get("endpoints") or []
                if e.get("conditions", {}).get("ready")
                for address in e["addresses"]
            }
            ports = {(p["name"], p["port"]) for s in slices for p in s.get("ports") or []}
            return ready == pod_ips and ("dapr-metrics", 9090) in ports

        wait_until(f"EndpointSlices of {ns}/{name}", sliced, timeout=30)


def test_the_dapr_operator_adds_each_apps_dapr_service(kube: Kube, deployed: Deployed) -> None:
    for dep in deployed.of("Deployment"):
        ns = dep["metadata"]["namespace"]
        app_id = dep["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"]

        def service(ns: str = ns, app_id: str = app_id) -> Obj:
            return kube.get("service", "-n", ns, f"{app_id}-dapr")

        svc = wait_until(f"{ns}/{app_id}-dapr", service, timeout=30)
        assert {p["name"] for p in svc["spec"]["ports"]} >= {"dapr-http", "dapr-grpc"}


def test_hpas_are_accepted_and_acted_on(kube: Kube, deployed: Deployed) -> None:
    """The HPA controller took each HPA up: the Deployment runs minReplicas, and the
    controller tried to read the CPU of the `app` container, which fails here (no
    metrics-server, no running container), so it does not scale on load."""
    hpas = deployed.of("HorizontalPodAutoscaler")
    assert len(hpas) == 4
    for hpa in hpas:
        meta = hpa["metadata"]

        def seen(meta: Obj = meta) -> Obj | None:
            live = kube.get("hpa", "-n", meta["namespace"], meta["name"])
            done = condition(live, "AbleToScale") == "True" and condition(live, "ScalingActive")
            return live if done else None

        live = wait_until(f"HPA {meta['namespace']}/{meta['name']} status", seen, timeout=60)
        target = live["spec"]["scaleTargetRef"]["name"]
        dep = kube.get("deployment", "-n", meta["namespace"], target)
        assert dep["spec"]["replicas"] == live["spec"]["minReplicas"]
        assert live["status"]["currentReplicas"] == live["spec"]["minReplicas"]
        reasons = {c["type"]: c.get("reason") for c in live["status"]["conditions"]}
        assert reasons["ScalingActive"] == "FailedGetContainerResourceMetric", reasons
        metric = live["spec"]["metrics"][0]
        assert metric["type"] == "ContainerResource"
        assert metric["containerResource"]["container"] == "app"


def test_keda_scaled_object_is_accepted(kube: Kube, deployed: Deployed) -> None:
    (scaled,) = deployed.of("ScaledObject")
    meta = scaled["metadata"]
    live = kube.get("scaledobject.keda.sh", "-n", meta["namespace"], meta["name"])
    assert live["spec"]["maxReplicaCount"] == scaled["spec"]["maxReplicaCount"]
    assert [t["type"] for t in live["spec"]["triggers"]] == ["kafka"] * len(
        scaled["spec"]["triggers"]
    )


def test_network_policies_and_pdbs_are_in_place(kube: Kube, deployed: Deployed) -> None:
    want = {_key(o) for o in deployed.of("NetworkPolicy")}
    live = {_key(o | {"kind": "NetworkPolicy"}) for o in kube.items("networkpolicies", "-A")}
    assert want
    assert want <= live
    for pdb in deployed.of("PodDisruptionBudget"):
        meta = pdb["metadata"]

        def computed(meta: Obj = meta) -> Obj | None:
            live = kube.get("pdb", "-n", meta["namespace"], meta["name"])
            status = live.get("status", {})
            healthy = status.get("currentHealthy", 0)
            return live if healthy and healthy == status.get("expectedPods") else None

        live_pdb = wait_until(f"PDB {meta['namespace']}/{meta['name']}", computed, timeout=30)
        # The disruption controller counts the simulated pods: maxUnavailable 1.
        assert live_pdb["status"]["disruptionsAllowed"] == 1


@pytest.mark.parametrize("namespace", [f"kaya787-{a}" for a in APP_IDS])
def test_app_namespaces_enforce_the_restricted_pod_security_standard(
    kube: Kube, deployed: Deployed, namespace: str
) -> None:
    labels = kube.get("namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
