"""Both overlays render with kustomize, and every object they contain is schema-valid.

Built-in kinds are checked with kubernetes-validate (strict: unknown fields fail), custom
resources with the schemas of the CRDs in k8s/sim/crds (strict too). The validators are shown to
reject broken objects too, so a green run means something.
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.support.k8s import (
    APP_IDS,
    CRDS,
    K8S,
    OVERLAYS,
    PUBSUB_APP_IDS,
    Obj,
    Objects,
    crd_schema_key,
    crd_schemas,
    env_file,
    is_builtin,
    objects,
    render,
    tool,
    validation_errors,
)
from tests.support.platform import ROOT

# Namespaced objects may live only in these namespaces.
KNOWN_NAMESPACES = {
    *(f"kaya787-{app}" for app in APP_IDS),
    "kaya787-gateway",
    "kaya787-data",
    "cert-manager",
    "monitoring",
    "observability",
}
CLUSTER_SCOPED = {"Namespace", "ClusterIssuer", "ClusterRole", "ClusterRoleBinding"}


@pytest.fixture(params=OVERLAYS, scope="module")
def objs(request: pytest.FixtureRequest) -> Objects:
    return objects(request.param)


def test_the_pinned_kustomize_is_installed() -> None:
    pinned = env_file(ROOT / "tools" / "k8s-tools.env")["KUSTOMIZE_VERSIONS"].split()
    version = subprocess.run(
        [str(tool("kustomize")), "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version.removeprefix("v") in pinned


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_platform(overlay: str) -> None:
    kinds = Counter(obj["kind"] for obj in objects(overlay).items)
    assert kinds["Deployment"] == len(APP_IDS)
    assert kinds["HorizontalPodAutoscaler"] == len(APP_IDS) - 1  # analytics scales by KEDA
    assert kinds["ScaledObject"] == 1
    assert kinds["Kafka"] == 1
    assert kinds["Cluster"] == len(APP_IDS)
    # statestore and secretstore for every app, pubsub for those that publish or subscribe.
    assert kinds["Component"] == 2 * len(APP_IDS) + len(PUBSUB_APP_IDS)
    assert kinds["Configuration"] == len(APP_IDS) + 1  # + the gateway's
    assert kinds["Ingress"] >= 1


def test_only_prod_carries_the_observability_stack() -> None:
    observability = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "Jaeger", "Elasticsearch"}
    prod = {obj["kind"] for obj in objects("prod").items}
    dev = {obj["kind"] for obj in objects("dev").items}
    assert observability <= prod
    assert not observability & dev


def test_every_object_is_schema_valid(objs: Objects) -> None:
    errors = [error for obj in objs.items for error in validation_errors(obj)]
    assert errors == []


def test_custom_resources_are_checked_against_the_repos_crds(objs: Objects) -> None:
    custom = [obj for obj in objs.items if not is_builtin(obj)]
    groups = {str(obj["apiVersion"]).split("/")[0] for obj in custom}
    assert {"dapr.io", "kafka.strimzi.io", "postgresql.cnpg.io", "keda.sh"} <= groups
    missing = {crd_schema_key(obj) for obj in custom} - set(crd_schemas())
    assert missing == set(), f"no CRD in {CRDS}"


def test_the_copied_dapr_crds_are_the_pinned_runtimes() -> None:
    """Dapr's CRDs are copies of the module's (the simulator installs the module's own):
    a runtime bump must bring the matching copies along."""
    pinned = env_file(ROOT / "tools" / "versions.env")["DAPR_RUNTIME_VERSION"]
    copies = sorted((CRDS / "dapr.io").glob("*.yaml"))
    assert {p.name for p in copies} >= {"components.yaml", "configuration.yaml", "resiliency.yaml"}
    for path in copies:
        assert f"github.com/dapr/dapr@v{pinned} " in path.read_text().splitlines()[0], path.name


def _deployment(objs: Objects) -> Obj:
    return copy.deepcopy(objs.one("Deployment", "identity", "kaya787-identity"))


def test_the_builtin_validator_rejects_an_unknown_field(objs: Objects) -> None:
    broken = _deployment(objs)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    assert any("runAsNonroot" in error for error in validation_errors(broken))


def test_the_builtin_validator_rejects_a_wrong_type(objs: Objects) -> None:
    broken = _deployment(objs)
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = "1Gi"
    assert validation_errors(broken)


def test_the_crd_validator_rejects_a_field_the_crd_does_not_have(objs: Objects) -> None:
    broken = copy.deepcopy(objs.one("Kafka", "kaya787", "kaya787-data"))
    broken["spec"]["kafka"]["resources"] = {"requests": {"cpu": "1"}}  # v1: on node pools only
    assert any("resources" in error for error in validation_errors(broken))


def test_the_crd_validator_rejects_an_unknown_field_in_a_dapr_resource(objs: Objects) -> None:
    broken = copy.deepcopy(objs.one("Configuration", "kaya787", "kaya787-accounts"))
    broken["spec"]["mtls"]["enabeld"] = True
    assert any("enabeld" in error for error in validation_errors(broken))


def test_the_crd_validator_rejects_an_unknown_top_level_field(objs: Objects) -> None:
    broken = copy.deepcopy(objs.of("Component", "kaya787-accounts")[0])
    broken["scope"] = ["accounts"]  # the field is `scopes`
    assert any("scope" in error for error in validation_errors(broken))


def test_the_crd_validator_rejects_a_missing_required_field(objs: Objects) -> None:
    broken = copy.deepcopy(objs.of("Component", "kaya787-accounts")[0])
    del broken["spec"]["version"]
    assert any("version" in error for error in validation_errors(broken))


def test_an_unknown_custom_resource_kind_fails_validation() -> None:
    unknown: Obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(AssertionError, match="no CRD schema"):
        validation_errors(unknown)


def test_objects_are_unique_and_in_known_namespaces(objs: Objects) -> None:
    keys = Counter(
        (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        for obj in objs.items
    )
    assert [key for key, count in keys.items() if count > 1] == []
    for obj in objs.items:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, obj["metadata"]
        else:
            assert namespace in KNOWN_NAMESPACES, (obj["kind"], obj["metadata"])


def test_no_secret_is_committed(objs: Objects) -> None:
    """Secrets are referenced by name, never written into the manifests."""
    assert objs.of("Secret") == []
    token_like = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|dapr-api-token:[A-Za-z0-9]")
    for path in K8S.rglob("*"):
        if path.is_file():
            assert not token_like.search(path.read_text(errors="replace")), path


def test_images_are_pinned(objs: Objects) -> None:
    for deployment in objs.of("Deployment"):
        for spec in deployment["spec"]["template"]["spec"]["containers"]:
            name, _, tag = str(spec["image"]).rpartition(":")
            assert name, spec["image"]
            assert tag not in ("", "latest"), spec["image"]
            assert "/" not in tag, spec["image"]


def test_render_fails_loudly_on_a_broken_kustomization(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(AssertionError, match="kustomize build"):
        render(tmp_path)
